"""dm_stack: manifest.json + manifest.env for a chain of layers."""

load("//dm:providers.bzl", "DmLayerInfo", "DmStackInfo")

# The seven named stacks: targets bottom (DATA_DEV) first.
STACKS = {
    "crypt-only": ["crypt"],
    "integrity-only": ["integrity"],
    "integrity-then-crypt": ["integrity", "crypt"],
    "crypt-then-integrity": ["crypt", "integrity"],
    "verity-only": ["verity"],
    "verity-then-crypt": ["verity", "crypt"],
    "crypt-then-verity": ["crypt", "verity"],
}

_META_NAMES = {"integrity": "integrity.meta.img", "verity": "verity.hash.img"}

def _check_shape(ctx, layer):
    got = [lyr.target for lyr in layer.layers]
    want = STACKS[ctx.attr.stack]
    if got != want:
        fail("%s: stack %s needs layers %s (bottom first), the chain from %s has %s" % (
            ctx.label,
            ctx.attr.stack,
            want,
            ctx.attr.src.label,
            got,
        ))
    for i, lyr in enumerate(layer.layers):
        if i > 0 and lyr.placement == "meta" and layer.layers[0].target == "crypt":
            # A layer above crypt keeps its metadata outside the encryption.
            if lyr.target == "verity":
                fail("%s: %s: in %s the verity tree is encrypted with the data; use hash_device = \"data\"" % (ctx.label, lyr.label, ctx.attr.stack))

def _dm_stack_impl(ctx):
    layer = ctx.attr.src[DmLayerInfo]
    _check_shape(ctx, layer)
    prefix = ctx.label.name + "/"
    manifest_json = ctx.actions.declare_file(prefix + "manifest.json")
    manifest_env = ctx.actions.declare_file(prefix + "manifest.env")
    data = ctx.actions.declare_file(prefix + "data.img")
    ctx.actions.symlink(output = data, target_file = layer.image)
    outputs = [manifest_json, manifest_env, data]
    meta = None
    args = ctx.actions.args()
    args.add("build")
    args.add("--stack", ctx.attr.stack)
    args.add("--name", ctx.attr.dm_name)
    args.add("--input", layer.input)
    args.add("--data", layer.image)
    inputs = [layer.input, layer.image]
    if layer.meta:
        meta = ctx.actions.declare_file(prefix + _META_NAMES[layer.meta_target])
        ctx.actions.symlink(output = meta, target_file = layer.meta)
        outputs.append(meta)
        args.add("--meta", layer.meta)
        inputs.append(layer.meta)
    if ctx.attr.mount_fstype:
        args.add("--mount-fstype", ctx.attr.mount_fstype)
    if ctx.attr.newroot:
        args.add("--newroot", ctx.attr.newroot)
    if ctx.attr.mount_opts:
        args.add("--mount-opts", ctx.attr.mount_opts)
    for lyr in layer.layers:
        args.add("--layer", lyr.params, format = "%s:%s:%%s" % (lyr.target, lyr.placement))
        inputs.append(lyr.params)
    args.add(manifest_json)
    args.add(manifest_env)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [manifest_json, manifest_env],
        mnemonic = "DmManifest",
        progress_message = "Writing dm manifest %s" % manifest_json.short_path,
    )
    return [
        DefaultInfo(files = depset(outputs), runfiles = ctx.runfiles(files = outputs)),
        DmStackInfo(
            stack = ctx.attr.stack,
            manifest_json = manifest_json,
            manifest_env = manifest_env,
            data = data,
            meta = meta,
            layer = layer,
        ),
    ]

dm_stack = rule(
    implementation = _dm_stack_impl,
    doc = """Writes `<name>/manifest.json` and `<name>/manifest.env`
(spec/manifest.md) for a chain of layers, next to `<name>/data.img` and,
when a layer keeps metadata on META_DEV, `<name>/integrity.meta.img` or
`<name>/verity.hash.img` (symlinks to the layer outputs). `stack` names the
shape, checked against the chain at analysis time.

```
dm_stack(
    name = "root_stack",
    src = ":root_verity",     # the bottom layer (on DATA_DEV)
    stack = "verity-then-crypt",
)
```""",
    attrs = {
        "src": attr.label(
            mandatory = True,
            providers = [DmLayerInfo],
            doc = "The bottom layer (the last rule of the chain, whose table sits on DATA_DEV).",
        ),
        "stack": attr.string(
            mandatory = True,
            values = sorted(STACKS.keys()),
            doc = "The stack shape: crypt-only, integrity-only, integrity-then-crypt, crypt-then-integrity, verity-only, verity-then-crypt or crypt-then-verity.",
        ),
        "dm_name": attr.string(
            default = "dmroot",
            doc = "Mapped name of the top layer (`/dev/mapper/<dm_name>`); lower layers are `<dm_name>-<target>`.",
        ),
        "mount_fstype": attr.string(default = "ext4", doc = "Mount default: file system type (empty: the activator's default)."),
        "newroot": attr.string(default = "", doc = "Mount default: where to mount (empty: the activator's default)."),
        "mount_opts": attr.string(default = "", doc = "Mount default: mount options."),
        "_tool": attr.label(
            default = Label("//tools/cmd/dm-manifest"),
            executable = True,
            cfg = "exec",
            doc = "dm-manifest (build).",
        ),
    },
)

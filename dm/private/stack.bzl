"""dm_stack: manifest.json + manifest.env for a chain of layers."""

load("//dm:providers.bzl", "DmLayerInfo", "DmStackInfo")
load(":common.bzl", "NO_REMOTE_KEYS_ATTR", "key_requirements")

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

# dm-compose build --profile: plain-crypt (the default) or aead.
PROFILES = ["plain-crypt", "aead"]

# dm-compose build --cipher with --profile aead ("": the profile's default,
# capi:gcm(aes)-random). Keys: gcm 16/24/32 bytes; authenc 64/80/96 (XTS key,
# then a 32-byte HMAC key).
AEAD_CIPHERS = [
    "capi:gcm(aes)-random",
    "capi:authenc(hmac(sha256),xts(aes))-random",
]

# The attributes that only profile aead takes (the plain-crypt layers take
# theirs in dm_crypt_image), with the value that means "not given".
_AEAD_ONLY = {"cipher": "", "key": None, "sector_size": 0}

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

def _add_mount_args(ctx, args):
    """The mount defaults of the manifest, as dm-compose and dm-manifest take them."""
    if ctx.attr.mount_fstype:
        args.add("--mount-fstype", ctx.attr.mount_fstype)
    if ctx.attr.newroot:
        args.add("--newroot", ctx.attr.newroot)
    if ctx.attr.mount_opts:
        args.add("--mount-opts", ctx.attr.mount_opts)

def _aead_stack(ctx, manifest_json, manifest_env, data):
    """profile aead: one `dm-compose build` action writes the whole stack.

    The two layers are not independent here (the crypt layer's authentication
    tags and IVs are the integrity layer's tags), so the stack is one action.
    """
    if ctx.attr.stack != "integrity-then-crypt":
        fail("%s: profile aead builds stack integrity-then-crypt (authenticated dm-crypt over dm-integrity in hash-none mode), not %s" % (ctx.label, ctx.attr.stack))
    if DmLayerInfo in ctx.attr.src:
        fail("%s: with profile aead, src is the filesystem image (dm_stack builds both layers), not the dm_* layer %s" % (ctx.label, ctx.attr.src.label))
    files = ctx.attr.src[DefaultInfo].files.to_list()
    if len(files) != 1:
        fail("%s: src %s must be one file (the filesystem image), got %d files" % (ctx.label, ctx.attr.src.label, len(files)))
    if not ctx.file.key:
        fail("%s: profile aead needs key (the dm-crypt key file: 32 bytes for capi:gcm(aes)-random)" % ctx.label)
    fs = files[0]
    meta = ctx.actions.declare_file(ctx.label.name + "/integrity.meta.img")
    args = ctx.actions.args()
    args.add("build")
    args.add("--stack", ctx.attr.stack)
    args.add("--profile", ctx.attr.profile)
    args.add("--key-file", ctx.file.key)
    if ctx.attr.cipher:
        args.add("--cipher", ctx.attr.cipher)
    if ctx.attr.sector_size:
        args.add("--sector-size", str(ctx.attr.sector_size))
    args.add("--name", ctx.attr.dm_name)
    _add_mount_args(ctx, args)
    args.add("--in", fs)
    args.add("--outdir", manifest_json.dirname)
    ctx.actions.run(
        executable = ctx.executable._compose,
        arguments = [args],
        inputs = [fs, ctx.file.key],
        outputs = [manifest_json, manifest_env, data, meta],
        mnemonic = "DmCompose",
        progress_message = "Building aead stack %s (%s)" % (manifest_json.short_path, ctx.attr.cipher or AEAD_CIPHERS[0]),
        execution_requirements = key_requirements(ctx),
    )
    return fs, meta

def _dm_stack_impl(ctx):
    prefix = ctx.label.name + "/"
    manifest_json = ctx.actions.declare_file(prefix + "manifest.json")
    manifest_env = ctx.actions.declare_file(prefix + "manifest.env")
    data = ctx.actions.declare_file(prefix + "data.img")
    if ctx.attr.profile == "aead":
        fs, meta = _aead_stack(ctx, manifest_json, manifest_env, data)
        return _stack_providers(ctx, manifest_json, manifest_env, data, meta, fs, None)
    for name, unset in _AEAD_ONLY.items():
        if getattr(ctx.attr, name) != unset:
            fail("%s: %s is only for profile aead (plain-crypt stacks take it in their dm_crypt_image)" % (ctx.label, name))
    if DmLayerInfo not in ctx.attr.src:
        fail("%s: src %s is not a dm_* layer: a plain-crypt stack is a chain of dm_crypt_image, dm_integrity_image and dm_verity_image (profile aead takes the filesystem image)" % (ctx.label, ctx.attr.src.label))
    layer = ctx.attr.src[DmLayerInfo]
    _check_shape(ctx, layer)
    ctx.actions.symlink(output = data, target_file = layer.image)
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
        args.add("--meta", layer.meta)
        inputs.append(layer.meta)
    _add_mount_args(ctx, args)
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
    return _stack_providers(ctx, manifest_json, manifest_env, data, meta, layer.input, layer)

def _stack_providers(ctx, manifest_json, manifest_env, data, meta, fs, layer):
    """DefaultInfo and DmStackInfo of a dm_stack (meta and layer may be None)."""
    outputs = [f for f in [manifest_json, manifest_env, data, meta] if f]
    return [
        DefaultInfo(files = depset(outputs), runfiles = ctx.runfiles(files = outputs)),
        DmStackInfo(
            stack = ctx.attr.stack,
            profile = ctx.attr.profile,
            manifest_json = manifest_json,
            manifest_env = manifest_env,
            data = data,
            meta = meta,
            input = fs,
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
```

`profile = "aead"` (as `dm-compose build --profile aead`) builds
authenticated dm-crypt (`capi:gcm(aes)-random`, or
`capi:authenc(hmac(sha256),xts(aes))-random`, with `integrity:<n>:aead`)
over dm-integrity in hash-none mode whose tags hold each sector's
[auth tag | IV]. The two layers are coupled (the tags are an output of the
encryption), so `src` is then the filesystem image itself and one
`dm-compose build` action writes `data.img` (the ciphertext),
`integrity.meta.img` (META_DEV) and the manifest, byte-identical to running
`dm-compose build --stack integrity-then-crypt --profile aead` with the same
flags. `key`, `cipher` and `sector_size` apply to this profile only.

```
dm_stack(
    name = "root_aead",
    src = ":rootfs",          # the filesystem image, not a dm_* layer
    stack = "integrity-then-crypt",
    profile = "aead",
    key = ":gcm.key",         # 32 bytes for capi:gcm(aes)-random; a label, never argv
)
```""",
    attrs = {
        "src": attr.label(
            mandatory = True,
            allow_files = True,
            doc = "profile plain-crypt: the bottom layer (the last dm_* rule of the chain, whose table sits on DATA_DEV). profile aead: the filesystem image (one file, e.g. a dm_ext4_image).",
        ),
        "stack": attr.string(
            mandatory = True,
            values = sorted(STACKS.keys()),
            doc = "`--stack`: the stack shape: crypt-only, integrity-only, integrity-then-crypt, crypt-then-integrity, verity-only, verity-then-crypt or crypt-then-verity (profile aead: integrity-then-crypt).",
        ),
        "profile": attr.string(
            default = "plain-crypt",
            values = PROFILES,
            doc = "`--profile`: `plain-crypt` (a chain of layer rules, one action per layer) or `aead` (stack integrity-then-crypt only: authenticated dm-crypt over dm-integrity in hash-none mode, one dm-compose action).",
        ),
        "key": attr.label(
            allow_single_file = True,
            doc = "`--key-file` (profile aead only, where it is mandatory): the raw dm-crypt key: 16, 24 or 32 bytes for capi:gcm(aes)-random; 64, 80 or 96 (the XTS key, then a 32-byte HMAC key) for capi:authenc(hmac(sha256),xts(aes))-random. Only its path is on the command line.",
        ),
        "cipher": attr.string(
            default = "",
            values = [""] + AEAD_CIPHERS,
            doc = "`--cipher` (profile aead only): capi:gcm(aes)-random or capi:authenc(hmac(sha256),xts(aes))-random. Empty: the profile's default, capi:gcm(aes)-random.",
        ),
        "sector_size": attr.int(
            default = 0,
            values = [0, 512, 4096],
            doc = "`--sector-size` (profile aead only): the dm-crypt sector size, which is also the dm-integrity block size: 512 or 4096. 0: 4096 when the image allows it (a multiple of 4096 and, for ext4, a block size of at least 4096), else 512.",
        ),
        "dm_name": attr.string(
            default = "dmroot",
            doc = "`--name`: mapped name of the top layer (`/dev/mapper/<dm_name>`); lower layers are `<dm_name>-<target>`.",
        ),
        "mount_fstype": attr.string(default = "ext4", doc = "`--mount-fstype`: mount default: file system type (empty: the activator's default)."),
        "newroot": attr.string(default = "", doc = "`--newroot`: mount default: where to mount (empty: the activator's default)."),
        "mount_opts": attr.string(default = "", doc = "`--mount-opts`: mount default: mount options."),
        "_no_remote_keys": NO_REMOTE_KEYS_ATTR,
        "_tool": attr.label(
            default = Label("//tools/cmd/dm-manifest"),
            executable = True,
            cfg = "exec",
            doc = "dm-manifest (build).",
        ),
        "_compose": attr.label(
            default = Label("//tools/cmd/dm-compose"),
            executable = True,
            cfg = "exec",
            doc = "dm-compose (build), for profile aead.",
        ),
    },
)

"""dm_integrity_image: formats a dm-integrity device offline."""

load(":common.bzl", "NO_REMOTE_KEYS_ATTR", "SEED_ATTR", "SRC_ATTR", "default_seed", "key_requirements", "layer_info", "resolve_src")

def _dm_integrity_image_impl(ctx):
    src, above = resolve_src(ctx)
    separate = ctx.attr.layout == "separate"
    out = ctx.actions.declare_file(ctx.label.name + (".meta.img" if separate else ".img"))
    params = ctx.actions.declare_file(ctx.label.name + ".params.json")
    if (ctx.attr.hash == "hmac-sha256") != (ctx.file.hmac_key != None):
        fail("%s: hmac_key is needed exactly when hash = \"hmac-sha256\"" % ctx.label)
    args = ctx.actions.args()
    args.add("format")
    args.add("--hash", ctx.attr.hash)
    inputs = [src]
    reqs = {}
    if ctx.file.hmac_key:
        args.add("--hmac-key-file", ctx.file.hmac_key)
        inputs.append(ctx.file.hmac_key)
        reqs = key_requirements(ctx)
    args.add("--block-size", str(ctx.attr.block_size))
    args.add("--layout", ctx.attr.layout)
    args.add("--mode", ctx.attr.mode)
    for name in ["tag_size", "journal_sections", "interleave_sectors", "buffer_sectors"]:
        value = getattr(ctx.attr, name)
        if value:
            args.add("--" + name.replace("_", "-"), str(value))
    if ctx.attr.salt:
        args.add("--salt", ctx.attr.salt)
    if ctx.attr.no_fix_hmac:
        args.add("--no-fix-hmac")
    args.add("--seed", default_seed(ctx))
    args.add("--params-out", params)
    args.add(src)
    args.add(out)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [out, params],
        mnemonic = "DmIntegrity",
        progress_message = "Formatting dm-integrity %s" % out.short_path,
        execution_requirements = reqs,
    )
    if separate:
        info = layer_info(ctx, "integrity", src, out, "integrity", params, "meta", src, above)
    else:
        info = layer_info(ctx, "integrity", out, None, "", params, "none", src, above)
    return [
        DefaultInfo(files = depset([out, params]), runfiles = ctx.runfiles(files = [out, params])),
        info,
    ]

dm_integrity_image = rule(
    implementation = _dm_integrity_image_impl,
    doc = """Formats a dm-integrity device over `src` with `dm-integrity format`
(superblock, empty journal and the tags of every block, so the kernel
activates it with no write). `layout = "separate"` (default) writes the
metadata device `<name>.meta.img` (for META_DEV) and passes the data through;
`"interleaved"` writes the whole single device `<name>.img`.

```
dm_integrity_image(
    name = "root_integrity",
    src = ":root_crypt",      # integrity-then-crypt
    hash = "sha256",
)
```""",
    attrs = {
        "src": SRC_ATTR,
        "hash": attr.string(
            default = "crc32c",
            values = ["crc32c", "sha256", "hmac-sha256"],
            doc = "`--hash`: the internal hash of the tags.",
        ),
        "hmac_key": attr.label(
            allow_single_file = True,
            doc = "`--hmac-key-file`: the hmac-sha256 key file (only with hash = \"hmac-sha256\").",
        ),
        "tag_size": attr.int(default = 0, doc = "`--tag-size`: tag bytes per block; 0: the digest size."),
        "block_size": attr.int(default = 4096, values = [512, 4096], doc = "`--block-size`: integrity block size."),
        "layout": attr.string(default = "separate", values = ["separate", "interleaved"], doc = "`--layout`: separate metadata device, or one interleaved device."),
        "mode": attr.string(default = "J", values = ["J", "D"], doc = "`--mode`: J (journal) or D (direct); the image is the same."),
        "journal_sections": attr.int(default = 0, doc = "`--journal-sections`; 0: the kernel's choice for the size."),
        "interleave_sectors": attr.int(default = 0, doc = "`--interleave-sectors` (interleaved layout); 0: 32768."),
        "buffer_sectors": attr.int(default = 0, doc = "`--buffer-sectors` (separate layout); 0: 128."),
        "salt": attr.string(doc = "`--salt`: 16-byte salt as hex. Empty: derived from `seed`."),
        "no_fix_hmac": attr.bool(default = False, doc = "`--no-fix-hmac`: unsalted tags (older superblock versions)."),
        "seed": SEED_ATTR,
        "_no_remote_keys": NO_REMOTE_KEYS_ATTR,
        "_tool": attr.label(
            default = Label("//tools/cmd/dm-integrity"),
            executable = True,
            cfg = "exec",
            doc = "The dm-integrity tool.",
        ),
    },
)

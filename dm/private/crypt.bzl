"""dm_crypt_image: encrypts an image as the dm-crypt target would (plain dm-crypt)."""

load(":common.bzl", "NO_REMOTE_KEYS_ATTR", "SRC_ATTR", "key_requirements", "layer_info", "resolve_src")

def _dm_crypt_image_impl(ctx):
    src, above = resolve_src(ctx)
    out = ctx.actions.declare_file(ctx.label.name + ".img")
    params = ctx.actions.declare_file(ctx.label.name + ".params.json")
    args = ctx.actions.args()
    args.add("encrypt")
    args.add("--cipher", ctx.attr.cipher)
    args.add("--key-file", ctx.file.key)
    args.add("--sector-size", str(ctx.attr.sector_size))
    if ctx.attr.iv_offset:
        args.add("--iv-offset", str(ctx.attr.iv_offset))
    if ctx.attr.iv_large_sectors:
        args.add("--iv-large-sectors")
    args.add("--params-out", params)
    args.add(src)
    args.add(out)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = [src, ctx.file.key],
        outputs = [out, params],
        mnemonic = "DmCrypt",
        progress_message = "Encrypting %s (%s)" % (out.short_path, ctx.attr.cipher),
        execution_requirements = key_requirements(ctx),
    )
    return [
        DefaultInfo(files = depset([out, params]), runfiles = ctx.runfiles(files = [out, params])),
        layer_info(ctx, "crypt", out, None, "", params, "-", src, above),
    ]

dm_crypt_image = rule(
    implementation = _dm_crypt_image_impl,
    doc = """Encrypts `src` with plain dm-crypt (no LUKS header), as one
`dm-crypt encrypt` action. Outputs `<name>.img` (the ciphertext: the device
under the crypt mapping) and `<name>.params.json` (the layer's manifest
fragment). The key enters as a file and only as a path on the command line.

```
dm_crypt_image(
    name = "root_crypt",
    src = ":rootfs",          # a filesystem image, or a dm_* layer
    cipher = "aes-xts-plain64",
    key = ":key.bin",         # 64 bytes for AES-256-XTS
    sector_size = 4096,
)
```""",
    attrs = {
        "src": SRC_ATTR,
        "cipher": attr.string(
            default = "aes-xts-plain64",
            values = ["aes-cbc-plain", "aes-cbc-plain64", "aes-cbc-essiv:sha256", "aes-xts-plain64"],
            doc = "`--cipher`: the dm-crypt cipher spec.",
        ),
        "key": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "`--key-file`: a file of raw key bytes (as cryptsetup's key files; XTS keys are double length). Never a string.",
        ),
        "sector_size": attr.int(
            default = 512,
            values = [512, 1024, 2048, 4096],
            doc = "`--sector-size`: encryption sector size in bytes.",
        ),
        "iv_offset": attr.int(
            default = 0,
            doc = "`--iv-offset`: IV offset in 512-byte sectors (a multiple of sector_size/512).",
        ),
        "iv_large_sectors": attr.bool(
            default = False,
            doc = "`--iv-large-sectors`: count IV sectors in sector_size units.",
        ),
        "_no_remote_keys": NO_REMOTE_KEYS_ATTR,
        "_tool": attr.label(
            default = Label("//tools/cmd/dm-crypt"),
            executable = True,
            cfg = "exec",
            doc = "The dm-crypt tool.",
        ),
    },
)

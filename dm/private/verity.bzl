"""dm_verity_image: computes a dm-verity hash tree over an image."""

load(":common.bzl", "SEED_ATTR", "SRC_ATTR", "default_seed", "flag_name", "layer_info", "resolve_src")

_BLOCK_SIZES = [512, 1024, 2048, 4096]

def _dm_verity_image_impl(ctx):
    src, above = resolve_src(ctx)
    tree = ctx.actions.declare_file(ctx.label.name + ".hash.img")
    tree_params = ctx.actions.declare_file(ctx.label.name + (".tree.params.json" if ctx.attr.hash_device == "data" else ".params.json"))
    args = ctx.actions.args()
    args.add("format")
    args.add("--hash", ctx.attr.hash)
    args.add("--data-block-size", str(ctx.attr.data_block_size))
    args.add("--hash-block-size", str(ctx.attr.hash_block_size))
    args.add("--format", str(ctx.attr.format))
    for name in ["salt", "uuid"]:
        value = getattr(ctx.attr, name)
        if value:
            args.add(flag_name(name), value)
    if ctx.attr.no_superblock:
        args.add("--no-superblock")
    args.add("--seed", default_seed(ctx))
    args.add("--params-out", tree_params)
    args.add(src)
    args.add(tree)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = [src],
        outputs = [tree, tree_params],
        mnemonic = "DmVerity",
        progress_message = "Computing dm-verity tree %s" % tree.short_path,
    )
    if ctx.attr.hash_device == "meta":
        files = [tree, tree_params]
        info = layer_info(ctx, "verity", src, tree, "verity", tree_params, "meta", src, above)
    else:
        # The tree goes after the data on the same device: one more action
        # appends it and moves hash_offset/hash_start_block in the fragment.
        out = ctx.actions.declare_file(ctx.label.name + ".img")
        params = ctx.actions.declare_file(ctx.label.name + ".params.json")
        app = ctx.actions.args()
        app.add("verity-append")
        app.add("--params", tree_params)
        app.add("--params-out", params)
        app.add(src)
        app.add(tree)
        app.add(out)
        ctx.actions.run(
            executable = ctx.executable._manifest_tool,
            arguments = [app],
            inputs = [src, tree, tree_params],
            outputs = [out, params],
            mnemonic = "DmVerityAppend",
            progress_message = "Appending dm-verity tree to %s" % out.short_path,
        )
        files = [out, params]
        info = layer_info(ctx, "verity", out, None, "", params, "data", src, above)
    return [
        DefaultInfo(files = depset(files), runfiles = ctx.runfiles(files = files)),
        info,
    ]

dm_verity_image = rule(
    implementation = _dm_verity_image_impl,
    doc = """Computes a dm-verity hash tree over `src` with `dm-verity format`
(veritysetup-compatible bytes; the salt and UUID derive from `seed`, never
random). With `hash_device = "data"` (default) the tree is appended to the
data: `<name>.img` is data + tree and the fragment `<name>.params.json`
records the offset; with `"meta"` the tree is `<name>.hash.img`, for
META_DEV, and the data passes through unchanged. The root hash is in the
fragment (a File), never a Starlark string.

```
dm_verity_image(
    name = "root_verity",
    src = ":root_crypt",      # verity-then-crypt
    hash = "sha256",
)
```""",
    attrs = {
        "src": SRC_ATTR,
        "hash": attr.string(
            default = "sha256",
            values = ["sha1", "sha256", "sha512"],
            doc = "`--hash`: the tree's hash algorithm.",
        ),
        "data_block_size": attr.int(default = 4096, values = _BLOCK_SIZES, doc = "`--data-block-size`: bytes per data block."),
        "hash_block_size": attr.int(default = 4096, values = _BLOCK_SIZES, doc = "`--hash-block-size`: bytes per hash block."),
        "salt": attr.string(doc = "`--salt`: hex salt, or `-` for none. Empty: derived from `seed` and the parameters."),
        "uuid": attr.string(doc = "`--uuid`: superblock UUID. Empty: derived from `seed`."),
        "format": attr.int(default = 1, values = [0, 1], doc = "`--format`: hash format, 1 (normal) or 0 (Chrome OS)."),
        "no_superblock": attr.bool(default = False, doc = "`--no-superblock`: write no verity superblock."),
        "seed": SEED_ATTR,
        "hash_device": attr.string(
            default = "data",
            values = ["data", "meta"],
            doc = "Where the tree lives: `data` (appended to the data, same device) or `meta` (a separate image for META_DEV).",
        ),
        "_tool": attr.label(
            default = Label("//tools/cmd/dm-verity"),
            executable = True,
            cfg = "exec",
            doc = "The dm-verity tool.",
        ),
        "_manifest_tool": attr.label(
            default = Label("//tools/cmd/dm-manifest"),
            executable = True,
            cfg = "exec",
            doc = "dm-manifest (verity-append).",
        ),
    },
)

"""dm_ext4_image: a deterministic read-only ext4 image from tars and files."""

def _fmt(dest):
    """An Args format string for DEST=<path of the value>."""
    return dest.replace("%", "%%") + "=%s"

def _dm_ext4_image_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".img")
    args = ctx.actions.args()
    inputs = []
    for t in ctx.files.tars:
        args.add("--tar", t)
        inputs.append(t)
    for d in ctx.attr.dirs:
        args.add("--dir", d)
    for attr_name, flag in [("files", "--file"), ("executables", "--exec")]:
        for f, dest in getattr(ctx.attr, attr_name).items():
            files = f.files.to_list()
            if len(files) != 1:
                fail("%s: %s key %s must be one file, got %d" % (ctx.label, attr_name, f.label, len(files)))
            args.add(flag, files[0], format = _fmt(dest))
            inputs.append(files[0])
    if ctx.attr.size:
        args.add("--size", str(ctx.attr.size))
    if ctx.attr.extra_blocks:
        args.add("--extra-blocks", str(ctx.attr.extra_blocks))
    if ctx.attr.inodes:
        args.add("--inodes", str(ctx.attr.inodes))
    if ctx.attr.volume_label:
        args.add("--label", ctx.attr.volume_label)
    args.add("--seed", ctx.attr.seed or "%s:%s" % (ctx.label.package, ctx.label.name))
    args.add("--mtime", str(ctx.attr.mtime))
    args.add(out)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "DmExt4",
        progress_message = "Building ext4 image %s" % out.short_path,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

dm_ext4_image = rule(
    implementation = _dm_ext4_image_impl,
    doc = """A deterministic, read-only ext4 image (4 KiB blocks, no journal)
built by the hermetic Go tool dm-ext4 from tar archives (e.g. made with your
packaging rules) and single files. Entries are sorted, the UUID derives from
`seed`; `e2fsck -fn` finds nothing to fix and the kernel mounts it.

```
dm_ext4_image(
    name = "rootfs",
    files = {":hostname": "etc/hostname"},
    dirs = ["proc", "sys", "dev"],
)
```""",
    attrs = {
        "tars": attr.label_list(allow_files = [".tar"], doc = "Tar archives to unpack, in order (later entries win)."),
        "files": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "Single files: label -> path in the image. Mode 0644, owner 0:0.",
        ),
        "executables": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "Like `files`, with mode 0755.",
        ),
        "dirs": attr.string_list(doc = "Empty directories to create (mode 0755)."),
        "size": attr.int(default = 0, doc = "`--size`: image size in bytes (multiple of 4096); 0: the smallest that fits."),
        "extra_blocks": attr.int(default = 0, doc = "`--extra-blocks`: free 4 KiB blocks to add to an automatic size."),
        "inodes": attr.int(default = 0, doc = "`--inodes`: minimum inode count; 0: automatic."),
        "volume_label": attr.string(doc = "`--label`: volume label (at most 16 bytes)."),
        "seed": attr.string(doc = "`--seed`: derives the UUID. Empty: `<package>:<name>`."),
        "mtime": attr.int(default = 0, doc = "`--mtime`: mtime of `files` and `dirs` entries (seconds since the epoch)."),
        "_tool": attr.label(
            default = Label("//tools/cmd/dm-ext4"),
            executable = True,
            cfg = "exec",
            doc = "dm-ext4.",
        ),
    },
)

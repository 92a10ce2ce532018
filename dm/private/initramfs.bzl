"""dm_initramfs_bundle: a reproducible newc cpio with the manifest and activators."""

load("//dm:providers.bzl", "DmStackInfo")

def _fmt(dest):
    """An Args format string for DEST=<path of the value>."""
    return dest.replace("%", "%%") + "=%s"

def _dm_initramfs_bundle_impl(ctx):
    st = ctx.attr.stack[DmStackInfo]
    out = ctx.actions.declare_file(ctx.label.name + ".cpio")
    mdir = ctx.attr.manifest_dir.strip("/")
    bdir = ctx.attr.bin_dir.strip("/")
    args = ctx.actions.args()
    inputs = [st.manifest_json, st.manifest_env, ctx.file._apply_manifest]
    args.add("--file", st.manifest_json, format = _fmt(mdir + "/manifest.json"))
    args.add("--file", st.manifest_env, format = _fmt(mdir + "/manifest.env"))
    args.add("--exec", ctx.file._apply_manifest, format = _fmt(bdir + "/apply_manifest.sh"))
    if ctx.attr.activator:
        act = ctx.executable.activator
        args.add("--exec", act, format = _fmt(bdir + "/dm-activate"))
        inputs.append(act)
    for f, dest in ctx.attr.extra_files.items():
        files = f.files.to_list()
        if len(files) != 1:
            fail("%s: extra_files key %s must be one file" % (ctx.label, f.label))
        args.add("--file", files[0], format = _fmt(dest.strip("/")))  # mode 0644
        inputs.append(files[0])
    for f, dest in ctx.attr.extra_executables.items():
        files = f.files.to_list()
        if len(files) != 1:
            fail("%s: extra_executables key %s must be one file" % (ctx.label, f.label))
        args.add("--exec", files[0], format = _fmt(dest.strip("/")))
        inputs.append(files[0])
    if ctx.file.base:
        args.add("--base", ctx.file.base)
        inputs.append(ctx.file.base)
    args.add(out)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "DmCpio",
        progress_message = "Writing initramfs %s" % out.short_path,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

dm_initramfs_bundle = rule(
    implementation = _dm_initramfs_bundle_impl,
    doc = """A reproducible newc cpio archive (an initramfs, or a piece to
append to one) holding the stack's manifest.json and manifest.env, the static
Go activator dm-activate (built pure: CGO off) and apply_manifest.sh. Entries
are sorted, mtimes 0, owner 0:0. With `base`, the archive is appended to that
initramfs (the kernel unpacks concatenated archives).

```
dm_initramfs_bundle(
    name = "initramfs",
    stack = ":root_stack",
)

dm_initramfs_bundle(
    name = "initramfs_arm64",  # for an arm64 target, built on any host
    stack = ":root_stack",
    activator = "//dm:dm-activate-linux-arm64",
)
```""",
    attrs = {
        "stack": attr.label(mandatory = True, providers = [DmStackInfo], doc = "The dm_stack whose manifest goes in."),
        "base": attr.label(allow_single_file = True, doc = "An initramfs (cpio, optionally compressed) to append to."),
        "extra_executables": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "More files: label -> path in the archive (mode 0755).",
        ),
        "manifest_dir": attr.string(default = "etc/rules_dm", doc = "Directory of manifest.json and manifest.env in the archive."),
        "bin_dir": attr.string(default = "sbin", doc = "Directory of dm-activate and apply_manifest.sh in the archive."),
        "activator": attr.label(
            default = Label("//initramfs/cmd/dm-activate"),
            executable = True,
            cfg = "target",
            doc = "The Go activator (a static binary), packed as `<bin_dir>/dm-activate`. Default: built for the target platform (amd64 on an amd64 host). `//dm:dm-activate-linux-arm64` (`@rules_dm//dm:...` from another workspace): linux/arm64, cross-compiled, static, pure Go. None: only apply_manifest.sh.",
        ),
        "extra_files": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "More files: label -> path in the archive (mode 0644).",
        ),
        "_apply_manifest": attr.label(
            default = Label("//initramfs:apply_manifest.sh"),
            allow_single_file = True,
            doc = "The POSIX sh activator.",
        ),
        "_tool": attr.label(
            default = Label("//tools/cmd/dm-cpio"),
            executable = True,
            cfg = "exec",
            doc = "dm-cpio.",
        ),
    },
)

"""Test helpers for running the repository's Go tests under Bazel."""

def _runfiles_alias_impl(ctx):
    return [DefaultInfo(runfiles = ctx.runfiles(symlinks = {ctx.attr.path: ctx.file.src}))]

runfiles_alias = rule(
    implementation = _runfiles_alias_impl,
    doc = """Makes `src` appear at `path` (relative to the workspace's runfiles
directory) in the runfiles of whatever lists this target in `data`. For Go
tests that find files relative to their source tree (`go test` runs them in
the package directory; a rules_go test runs in the runfiles tree).""",
    attrs = {
        "src": attr.label(mandatory = True, allow_single_file = True, doc = "The file."),
        "path": attr.string(mandatory = True, doc = "Where it appears, relative to the workspace runfiles root."),
    },
)

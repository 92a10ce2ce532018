"""dm_roundtrip_test: checks in `bazel test` that every layer decodes back to its input."""

load("//dm:providers.bzl", "DmLayerInfo", "DmStackInfo")

def _dm_roundtrip_test_impl(ctx):
    if DmStackInfo in ctx.attr.src:
        layer = ctx.attr.src[DmStackInfo].layer
    else:
        layer = ctx.attr.src[DmLayerInfo]
    files = [ctx.executable._crypt, ctx.executable._verity, ctx.executable._integrity]
    layers = []
    for lyr in layer.layers:
        layers.append(struct(
            target = lyr.target,
            placement = lyr.placement,
            image = lyr.image.short_path,
            meta = lyr.meta.short_path if lyr.meta else "",
            src = lyr.src.short_path,
            params = lyr.params.short_path,
        ))
        files.extend([lyr.image, lyr.src, lyr.params] + ([lyr.meta] if lyr.meta else []))
    key = ""
    if ctx.file.key:
        key = ctx.file.key.short_path
        files.append(ctx.file.key)
    hmac_key = ""
    if ctx.file.hmac_key:
        hmac_key = ctx.file.hmac_key.short_path
        files.append(ctx.file.hmac_key)
    config = ctx.actions.declare_file(ctx.label.name + ".roundtrip.json")
    ctx.actions.write(config, struct(
        layers = layers,
        key = key,
        hmac_key = hmac_key,
        crypt = ctx.executable._crypt.short_path,
        verity = ctx.executable._verity.short_path,
        integrity = ctx.executable._integrity.short_path,
    ).to_json())
    exe = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(output = exe, target_file = ctx.executable._runner, is_executable = True)
    files.append(config)
    return [
        DefaultInfo(executable = exe, runfiles = ctx.runfiles(files = files + [ctx.executable._runner])),
        testing.TestEnvironment({"DM_ROUNDTRIP_CONFIG": config.short_path}),
    ]

_dm_roundtrip_test = rule(
    implementation = _dm_roundtrip_test_impl,
    test = True,
    attrs = {
        "src": attr.label(
            mandatory = True,
            doc = "A dm_* layer or a dm_stack: every layer of its chain is checked.",
        ),
        "key": attr.label(allow_single_file = True, doc = "The crypt key file (needed when the chain has a crypt layer)."),
        "hmac_key": attr.label(allow_single_file = True, doc = "The hmac-sha256 key of an integrity layer."),
        "_runner": attr.label(default = Label("//tools/cmd/dm-roundtrip"), executable = True, cfg = "target", doc = "The test driver."),
        "_crypt": attr.label(default = Label("//tools/cmd/dm-crypt"), executable = True, cfg = "target", doc = "dm-crypt."),
        "_verity": attr.label(default = Label("//tools/cmd/dm-verity"), executable = True, cfg = "target", doc = "dm-verity."),
        "_integrity": attr.label(default = Label("//tools/cmd/dm-integrity"), executable = True, cfg = "target", doc = "dm-integrity."),
    },
)

def dm_roundtrip_test(name, src, key = None, hmac_key = None, tags = None, **kwargs):
    """Checks that each layer of `src` decodes back to its input.

    crypt: `dm-crypt decrypt` gives back the layer's input; verity:
    `dm-verity verify` accepts data and tree and the data is the input;
    integrity: `dm-integrity verify` accepts every tag (separate layout: the
    data is the input). Tests that read a key are tagged `no-remote`; every
    one is tagged `dm_roundtrip` (`--build_tag_filters=-dm_roundtrip` builds
    the images without the test drivers).

    ```
    dm_roundtrip_test(
        name = "root_roundtrip_test",
        src = ":root_stack",
        key = ":key.bin",
    )
    ```

    Args:
      name: test name.
      src: a dm_* layer or a dm_stack.
      key: the crypt key file, when the chain has a crypt layer.
      hmac_key: the hmac key of an hmac-sha256 integrity layer.
      tags: test tags.
      **kwargs: common test attributes (size, timeout, ...).
    """
    tags = list(tags or [])
    if "dm_roundtrip" not in tags:
        tags.append("dm_roundtrip")
    if (key or hmac_key) and "no-remote" not in tags:
        tags.append("no-remote")
    _dm_roundtrip_test(
        name = name,
        src = src,
        key = key,
        hmac_key = hmac_key,
        tags = tags,
        **kwargs
    )

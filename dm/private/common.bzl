"""Helpers shared by the rules_dm layer rules (private)."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load("//dm:providers.bzl", "DmLayerInfo")

def flag_name(attr_name):
    """Maps an attribute name to its CLI flag: `data_block_size` -> `--data-block-size`.

    Args:
      attr_name: the attribute name.

    Returns:
      The flag, with its leading dashes.
    """
    return "--" + attr_name.replace("_", "-")

def resolve_src(ctx):
    """Resolves the `src` attribute of a layer rule.

    Args:
      ctx: the rule context.

    Returns:
      (File, DmLayerInfo or None): the image to process and the layer above, if any.
    """
    src = ctx.attr.src
    if DmLayerInfo in src:
        return src[DmLayerInfo].image, src[DmLayerInfo]
    files = src[DefaultInfo].files.to_list()
    if len(files) != 1:
        fail("src %s must be one file or a dm_* layer, got %d files" % (src.label, len(files)))
    return files[0], None

def key_requirements(ctx):
    """Execution requirements for actions that read a key file.

    Args:
      ctx: the rule context (with the `_no_remote_keys` attribute).

    Returns:
      A dict for `execution_requirements`.
    """
    if ctx.attr._no_remote_keys[BuildSettingInfo].value:
        return {"no-remote": "1"}
    return {}

def default_seed(ctx):
    """Seed for derived salts/UUIDs: the `seed` attribute, else `package:name`.

    Args:
      ctx: the rule context.

    Returns:
      The seed string.
    """
    return ctx.attr.seed or "%s:%s" % (ctx.label.package, ctx.label.name)

def layer_info(ctx, target, image, meta, meta_target, params, placement, src, above):
    """Builds the DmLayerInfo of a layer, carrying the metadata and chain of the layer above.

    Args:
      ctx: the rule context.
      target: `crypt`, `integrity` or `verity`.
      image: File, the image of the device this layer sits on.
      meta: File or None, this layer's own META_DEV image.
      meta_target: the target owning `meta`, or "".
      params: File, the layer's manifest fragment.
      placement: where the layer keeps its metadata (see DmLayerInfo).
      src: File, the image the layer read.
      above: DmLayerInfo of the layer above, or None.

    Returns:
      DmLayerInfo.
    """
    own_meta = meta
    if above and above.meta:
        if meta:
            fail("%s: both this layer and %s keep metadata on META_DEV; a stack has one META_DEV" % (ctx.label, above.meta_target))
        meta, meta_target = above.meta, above.meta_target
    this = struct(
        target = target,
        params = params,
        placement = placement,
        image = image,
        meta = own_meta,
        src = src,
        label = ctx.label,
    )
    return DmLayerInfo(
        target = target,
        image = image,
        meta = meta,
        meta_target = meta_target,
        params = params,
        placement = placement,
        src = src,
        input = above.input if above else src,
        layers = [this] + (above.layers if above else []),
    )

SRC_ATTR = attr.label(
    mandatory = True,
    allow_files = True,
    doc = "The image to process: one file (e.g. a dm_ext4_image), or a dm_* layer whose mapping sits on top of this one (its `image` is used).",
)

SEED_ATTR = attr.string(
    doc = "Seed for the derived salt/UUID (`--seed`). Empty: `<package>:<name>` of this target, so outputs are reproducible and distinct per target.",
)

NO_REMOTE_KEYS_ATTR = attr.label(
    default = Label("//dm:no_remote_keys"),
    doc = "Build setting: when true, actions that read a key get the `no-remote` execution requirement.",
)

"""Providers of rules_dm. Load them from //dm:defs.bzl."""

DmLayerInfo = provider(
    doc = """One device-mapper layer built offline by dm_crypt_image,
dm_integrity_image or dm_verity_image.

A layer rule reads `src` (a filesystem image, or the layer whose mapping sits
on top of this one) and writes the bytes of the device this layer's table
sits on. Chaining rules through `src` therefore goes from the filesystem
(the top mapping) down to DATA_DEV (the bottom layer, the last rule).
Keys are never part of this provider.""",
    fields = {
        "target": "String: the dm target, `crypt`, `integrity` or `verity`.",
        "image": "File: the image of the device this layer sits on (the ciphertext, the data with an appended verity tree, the interleaved integrity device, or `src` itself when the metadata is separate).",
        "meta": "File or None: the image for META_DEV, written by this layer or by a layer above it (separate integrity metadata, or a verity tree with hash_device = \"meta\").",
        "meta_target": "String: the target of the layer that owns `meta` (`verity` or `integrity`), or \"\".",
        "params": "File: this layer's manifest fragment (JSON written by the tool's --params-out).",
        "placement": "String: where this layer keeps its metadata: `-` (crypt), `data` or `meta` (verity tree), `meta` or `none` (integrity, separate or interleaved).",
        "src": "File: the image this layer read (what decoding this layer must give back).",
        "input": "File: the plaintext filesystem image at the top of the chain.",
        "layers": "List of structs (target, params, placement, image, meta, src, label; `meta` is the layer's own metadata image or None), this layer first, then the layers above it up to the filesystem: the manifest's layer order, bottom first.",
    },
)

DmStackInfo = provider(
    doc = """A complete stack built by dm_stack: the artifacts and manifest files
that an initramfs (dm_initramfs_bundle) or an image assembler consumes.""",
    fields = {
        "stack": "String: the stack name (one of the seven shapes).",
        "profile": "String: `plain-crypt` (a chain of layer rules) or `aead` (authenticated dm-crypt over dm-integrity in hash-none mode, built by one dm-compose action).",
        "manifest_json": "File: manifest.json (spec/manifest.md).",
        "manifest_env": "File: manifest.env, the flattened DMTOOLS_* form.",
        "data": "File: the data image (for DATA_DEV), named as in the manifest.",
        "meta": "File or None: the metadata image (for META_DEV), named as in the manifest.",
        "input": "File: the plaintext filesystem image (what the top mapping gives back).",
        "layer": "DmLayerInfo of the bottom layer; None for profile aead (no per-layer rules).",
    },
)

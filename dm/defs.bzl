"""Public API of rules_dm: Bazel rules for dm-crypt, dm-integrity and dm-verity
disk images built offline by small hermetic Go tools, one action per layer.

Definitions outside this file are private. See dm/README.md for a walkthrough.
"""

load("//dm:providers.bzl", _DmLayerInfo = "DmLayerInfo", _DmStackInfo = "DmStackInfo")
load("//dm/private:crypt.bzl", _dm_crypt_image = "dm_crypt_image")
load("//dm/private:ext4.bzl", _dm_ext4_image = "dm_ext4_image")
load("//dm/private:initramfs.bzl", _dm_initramfs_bundle = "dm_initramfs_bundle")
load("//dm/private:integrity.bzl", _dm_integrity_image = "dm_integrity_image")
load("//dm/private:kernel_test.bzl", _dm_kernel_test = "dm_kernel_test")
load("//dm/private:roundtrip.bzl", _dm_roundtrip_test = "dm_roundtrip_test")
load("//dm/private:stack.bzl", _STACKS = "STACKS", _dm_stack = "dm_stack")
load("//dm/private:verity.bzl", _dm_verity_image = "dm_verity_image")

# See dm/providers.bzl for the documented fields.
DmLayerInfo = _DmLayerInfo
DmStackInfo = _DmStackInfo

# Layer rules: one action (one Go tool) per layer.
dm_crypt_image = _dm_crypt_image
dm_integrity_image = _dm_integrity_image
dm_verity_image = _dm_verity_image

# Stack, initramfs, filesystem and test.
dm_stack = _dm_stack
dm_initramfs_bundle = _dm_initramfs_bundle
dm_ext4_image = _dm_ext4_image
dm_roundtrip_test = _dm_roundtrip_test

# Opt-in (tagged manual): activation in a real kernel under QEMU.
dm_kernel_test = _dm_kernel_test

# The seven stack shapes: name -> targets, bottom (DATA_DEV) first.
DM_STACKS = _STACKS

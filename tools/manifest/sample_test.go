package manifest

import (
	"fmt"
	"strings"
)

var hexA = strings.Repeat("a", 64)

// sample returns a plausible manifest for a stack (tables in the shape the
// composer writes them).
func sample(stack string) *Manifest {
	m := &Manifest{
		SchemaVersion: 1, Stack: stack, Profile: ProfilePlainCrypt, Name: "dmroot",
		Input:     Input{Size: 8388608, SHA256: hexA},
		Artifacts: []Artifact{{Role: RoleData, Path: "data.img", Size: 8462336, SHA256: strings.Repeat("b", 64)}},
		Mount:     &Mount{FSType: "ext4", NewRoot: "/newroot", Options: "ro"},
	}
	const sectors = 16384
	crypt := func(i int, dev string) Layer {
		return Layer{Target: TargetCrypt, Sectors: sectors,
			Table: fmt.Sprintf("0 %d crypt aes-xts-plain64 @KEY@ 0 %s 0 1 sector_size:4096", sectors, dev),
			Crypt: &Crypt{Cipher: "aes-xts-plain64", KeySize: 64, KeyDesc: "rules_dm:dmroot", SectorSize: 4096}}
	}
	verity := func(i int, dev, hdev string) Layer {
		v := &Verity{Version: 1, DataDevice: map[string]string{"@DATA@": "data", "@LOWER@": "lower"}[dev],
			HashDevice:    map[string]string{"@DATA@": "data", "@LOWER@": "lower", "@META@": "meta"}[hdev],
			DataBlockSize: 4096, HashBlockSize: 4096, DataBlocks: 2048, HashStartBlock: 2049,
			HashOffset: 8388608, HashAlgorithm: "sha256", RootHash: strings.Repeat("c", 64),
			Salt: strings.Repeat("d", 64), Superblock: true, UUID: "01234567-89ab-cdef-0123-456789abcdef"}
		return Layer{Target: TargetVerity, Sectors: sectors, Verity: v,
			Table: fmt.Sprintf("0 %d verity 1 %s %s 4096 4096 2048 2049 sha256 %s %s", sectors, dev, hdev, v.RootHash, v.Salt)}
	}
	integ := func(i int, dev string) Layer {
		g := &Integrity{TagSize: 4, Mode: "J", BlockSize: 4096, Hash: "crc32c", Layout: "separate", MetaDevice: "meta",
			JournalSectors: 392, JournalSections: 1, InterleaveSectors: 1, BufferSectors: 128,
			ProvidedDataSectors: sectors, FixHmac: true, Salt: strings.Repeat("e", 32)}
		return Layer{Target: TargetIntegrity, Sectors: sectors, Integrity: g,
			Table: fmt.Sprintf("0 %d integrity %s 0 4 J 9 meta_device:@META@ block_size:4096 journal_sectors:392 interleave_sectors:1 buffer_sectors:128 journal_watermark:50 commit_time:10000 fix_hmac internal_hash:crc32c", sectors, dev)}
	}
	meta := func(p string) {
		m.Artifacts = append(m.Artifacts, Artifact{Role: RoleMeta, Path: p, Size: 1 << 20, SHA256: strings.Repeat("f", 64)})
	}
	switch stack {
	case StackCryptOnly:
		m.Layers = []Layer{crypt(0, "@DATA@")}
	case StackVerityOnly:
		m.Layers = []Layer{verity(0, "@DATA@", "@DATA@")}
	case StackVerityThenCrypt:
		m.Layers = []Layer{verity(0, "@DATA@", "@DATA@"), crypt(1, "@LOWER@")}
	case StackCryptThenVerity:
		m.Layers = []Layer{crypt(0, "@DATA@"), verity(1, "@LOWER@", "@LOWER@")}
	case StackIntegrityOnly:
		m.Layers = []Layer{integ(0, "@DATA@")}
		meta("integrity.meta.img")
	case StackIntegrityThenCrypt:
		m.Layers = []Layer{integ(0, "@DATA@"), crypt(1, "@LOWER@")}
		meta("integrity.meta.img")
	case StackCryptThenIntegrity:
		m.Layers = []Layer{crypt(0, "@DATA@"), integ(1, "@LOWER@")}
		meta("integrity.meta.img")
	}
	for i := range m.Layers {
		m.Layers[i].Index = i
		m.Layers[i].Device = DeviceLower
		if i == 0 {
			m.Layers[i].Device = DeviceData
		}
		m.Layers[i].Name = LayerName("dmroot", m.Layers[i].Target, i == len(m.Layers)-1)
	}
	return m
}

package crypt

import (
	"strconv"
	"strings"
)

// Table returns the dm-crypt table line
//
//	0 <sectors> crypt <cipher> <keyRef> <ivOffset> <dev> <offset> [<n> <opts>...]
//
// sectors and offset are in 512-byte units; keyRef is a hex key, a keyring
// reference (":<size>:logon:<desc>") or a placeholder such as @KEY@; dev
// likewise (@DATA@, @LOWER@). Optional arguments appear only when not
// default, in the order the kernel's own status line prints them:
// integrity:<integrity> (integrity is "<tag_bytes>:<aead|none>", with or
// without the "integrity:" prefix; empty for none), sector_size:<n> (when not
// 512; 0 means 512) and iv_large_sectors. Table does not validate: build the
// values from a checked [Spec].
func Table(cipher, keyRef string, ivOffset uint64, dev string, offset uint64, sectors uint64, sectorSize int, ivLarge bool, integrity string) string {
	var b strings.Builder
	b.WriteString("0 ")
	b.WriteString(strconv.FormatUint(sectors, 10))
	b.WriteString(" crypt ")
	b.WriteString(cipher)
	b.WriteByte(' ')
	b.WriteString(keyRef)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(ivOffset, 10))
	b.WriteByte(' ')
	b.WriteString(dev)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(offset, 10))
	var opts []string
	if integrity != "" {
		opts = append(opts, "integrity:"+strings.TrimPrefix(integrity, "integrity:"))
	}
	if sectorSize != 0 && sectorSize != 512 {
		opts = append(opts, "sector_size:"+strconv.Itoa(sectorSize))
	}
	if ivLarge {
		opts = append(opts, "iv_large_sectors")
	}
	if len(opts) > 0 {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(len(opts)))
		for _, o := range opts {
			b.WriteByte(' ')
			b.WriteString(o)
		}
	}
	return b.String()
}

// Params is a crypt layer's manifest fragment (the JSON that dm-crypt
// --params-out writes and the composer merges). It never holds the key.
type Params struct {
	Target         string `json:"target"` // always "crypt"
	Cipher         string `json:"cipher"`
	KeySize        int    `json:"key_size"`
	SectorSize     int    `json:"sector_size"`
	IVOffset       uint64 `json:"iv_offset"`
	IVLargeSectors bool   `json:"iv_large_sectors"`
	// Sectors is the table length in 512-byte units.
	Sectors uint64 `json:"sectors"`
	// DataSectors is the size of the device under the mapping in 512-byte
	// units (equal to Sectors: dm-crypt maps 1:1).
	DataSectors uint64 `json:"data_sectors"`
	// Integrity is the integrity:<N>:<type> argument without its prefix
	// ("28:aead") for AEAD specs; empty otherwise.
	Integrity string `json:"integrity,omitempty"`
	// TagSize is the per-sector tag entry size for AEAD specs (0 otherwise).
	TagSize int `json:"tag_size,omitempty"`
}

// Params returns the fragment for an image of sizeBytes bytes.
func (c *Cipher) Params(sizeBytes int64) Params {
	return Params{
		Target:         "crypt",
		Cipher:         c.spec.String(),
		KeySize:        c.keySize,
		SectorSize:     c.sectorSize,
		IVOffset:       c.ivOffset,
		IVLargeSectors: c.ivLarge,
		Sectors:        uint64(sizeBytes) / 512,
		DataSectors:    uint64(sizeBytes) / 512,
	}
}

// AEADParams returns the fragment of an AEAD layer for an image of
// sizeBytes bytes, with the table's iv_offset and iv_large_sectors (which
// do not change the bytes of an AEAD image).
func (a *AEAD) AEADParams(sizeBytes int64, ivOffset uint64, ivLarge bool) Params {
	return Params{
		Target:         "crypt",
		Cipher:         a.spec,
		KeySize:        a.keySize,
		SectorSize:     a.sectorSize,
		IVOffset:       ivOffset,
		IVLargeSectors: ivLarge,
		Sectors:        uint64(sizeBytes) / 512,
		DataSectors:    uint64(sizeBytes) / 512,
		Integrity:      a.IntegrityArg(),
		TagSize:        a.TagSize(),
	}
}

// Package dm drives the Linux device-mapper through its ioctl interface on
// /dev/mapper/control, the way libdevmapper does, without dmsetup or cgo.
//
// Every request is one buffer: a struct dm_ioctl header (312 bytes on every
// architecture) followed by a data area. For DM_TABLE_LOAD the data area holds
// one struct dm_target_spec (40 bytes) per target, each followed by its
// NUL-terminated parameter string padded to 8 bytes; the spec's "next" field is
// the distance from that spec to the next one. On output (DM_TABLE_STATUS) the
// kernel writes the same shape at data_start, but "next" is measured from the
// first spec. Layout per include/uapi/linux/dm-ioctl.h, interface version 4.
package dm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Sizes and offsets of the kernel structures (checked against x/sys in tests).
const (
	headerSize = 312 // sizeof(struct dm_ioctl)
	specSize   = 40  // sizeof(struct dm_target_spec)
	nameLen    = 128 // DM_NAME_LEN
	uuidLen    = 129 // DM_UUID_LEN
	typeLen    = 16  // DM_MAX_TYPE_NAME
	align      = 8   // alignment of every dm_target_spec

	offVersion     = 0
	offDataSize    = 12
	offDataStart   = 16
	offTargetCount = 20
	offOpenCount   = 24
	offFlags       = 28
	offEventNr     = 32
	offDev         = 40
	offName        = 48
	offUUID        = offName + nameLen // 176

	offSpecStart  = 0
	offSpecLength = 8
	offSpecStatus = 16
	offSpecNext   = 20
	offSpecType   = 24
)

// Interface version we speak (major must match the kernel's; minor is the
// lowest we need: 4.0 has every ioctl used here).
var ioctlVersion = [3]uint32{4, 0, 0}

// Flags of struct dm_ioctl used by this package.
const (
	FlagReadOnly      = unix.DM_READONLY_FLAG
	FlagSuspend       = unix.DM_SUSPEND_FLAG
	FlagActivePresent = unix.DM_ACTIVE_PRESENT_FLAG
	FlagInactive      = unix.DM_INACTIVE_PRESENT_FLAG
	FlagBufferFull    = unix.DM_BUFFER_FULL_FLAG
	FlagStatusTable   = unix.DM_STATUS_TABLE_FLAG
	FlagSecureData    = unix.DM_SECURE_DATA_FLAG
	FlagQueryInactive = unix.DM_QUERY_INACTIVE_TABLE_FLAG
)

// byteOrder is the host's: the kernel reads the structure in native order.
var byteOrder = binary.NativeEndian

// Target is one line of a device-mapper table. Params is a byte slice, not a
// string, so that a caller can wipe key material after use.
type Target struct {
	Start  uint64 // first sector (512-byte units)
	Length uint64 // sectors
	Type   string // "crypt", "verity", "integrity", ...
	Params []byte // target arguments, as in a dmsetup table line
	Status int32  // output only
}

// Info is the device information the kernel returns in the header.
type Info struct {
	Version     [3]uint32
	DataSize    uint32
	DataStart   uint32
	TargetCount uint32
	OpenCount   int32
	Flags       uint32
	EventNr     uint32
	Dev         uint64 // dev_t in the kernel's huge encoding (unix.Major/Minor decode it)
	Name        string
	UUID        string
}

// Major and Minor of the mapped device.
func (i Info) Major() uint32 { return unix.Major(i.Dev) }
func (i Info) Minor() uint32 { return unix.Minor(i.Dev) }

func align8(n int) int { return (n + align - 1) &^ (align - 1) }

// ValidName reports whether name can be a mapped device name: non-empty,
// shorter than DM_NAME_LEN, no '/', no NUL or blank, not "." or "..".
func ValidName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid device-mapper name %q", name)
	}
	if len(name) >= nameLen {
		return fmt.Errorf("device-mapper name %q is longer than %d bytes", name, nameLen-1)
	}
	for _, c := range []byte(name) {
		if c == '/' || c <= ' ' || c >= 0x7f {
			return fmt.Errorf("invalid character in device-mapper name %q", name)
		}
	}
	return nil
}

// marshal builds a request buffer: header, then the targets, then extra spare
// bytes for the kernel's answer. The caller owns (and may wipe) the buffer.
func marshal(name string, flags uint32, targets []Target, extra int) ([]byte, error) {
	if name != "" {
		if err := ValidName(name); err != nil {
			return nil, err
		}
	}
	size := headerSize
	for _, t := range targets {
		if t.Type == "" || len(t.Type) >= typeLen {
			return nil, fmt.Errorf("invalid target type %q", t.Type)
		}
		for _, c := range t.Params {
			if c == 0 {
				return nil, errors.New("target parameters contain a NUL byte")
			}
		}
		size += specSize + align8(len(t.Params)+1)
	}
	size += align8(extra)
	buf := make([]byte, size)
	for i, v := range ioctlVersion {
		byteOrder.PutUint32(buf[offVersion+4*i:], v)
	}
	byteOrder.PutUint32(buf[offDataSize:], uint32(size))
	byteOrder.PutUint32(buf[offDataStart:], headerSize)
	byteOrder.PutUint32(buf[offTargetCount:], uint32(len(targets)))
	byteOrder.PutUint32(buf[offFlags:], flags)
	copy(buf[offName:offName+nameLen-1], name)
	off := headerSize
	for _, t := range targets {
		next := specSize + align8(len(t.Params)+1)
		s := buf[off:]
		byteOrder.PutUint64(s[offSpecStart:], t.Start)
		byteOrder.PutUint64(s[offSpecLength:], t.Length)
		byteOrder.PutUint32(s[offSpecNext:], uint32(next))
		copy(s[offSpecType:offSpecType+typeLen-1], t.Type)
		copy(s[specSize:], t.Params) // NUL and padding are already zero
		off += next
	}
	return buf, nil
}

// cstr returns the NUL-terminated string at the start of b.
func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// parseInfo decodes the header of a kernel answer.
func parseInfo(buf []byte) (Info, error) {
	if len(buf) < headerSize {
		return Info{}, fmt.Errorf("device-mapper answer too short (%d bytes)", len(buf))
	}
	var in Info
	for i := range in.Version {
		in.Version[i] = byteOrder.Uint32(buf[offVersion+4*i:])
	}
	in.DataSize = byteOrder.Uint32(buf[offDataSize:])
	in.DataStart = byteOrder.Uint32(buf[offDataStart:])
	in.TargetCount = byteOrder.Uint32(buf[offTargetCount:])
	in.OpenCount = int32(byteOrder.Uint32(buf[offOpenCount:]))
	in.Flags = byteOrder.Uint32(buf[offFlags:])
	in.EventNr = byteOrder.Uint32(buf[offEventNr:])
	in.Dev = byteOrder.Uint64(buf[offDev:])
	in.Name = cstr(buf[offName : offName+nameLen])
	in.UUID = cstr(buf[offUUID : offUUID+uuidLen])
	return in, nil
}

// parseTargets decodes the targets of a DM_TABLE_STATUS answer: specs start at
// data_start; each "next" is relative to the first spec.
func parseTargets(buf []byte, in Info) ([]Target, error) {
	if in.TargetCount == 0 {
		return nil, nil
	}
	end := int(in.DataSize)
	if end > len(buf) || end < headerSize {
		end = len(buf)
	}
	base := int(in.DataStart)
	if base < headerSize || base > end {
		return nil, fmt.Errorf("device-mapper answer: bad data_start %d", in.DataStart)
	}
	var out []Target
	off := base
	for i := uint32(0); i < in.TargetCount; i++ {
		if off+specSize > end {
			return nil, fmt.Errorf("device-mapper answer: target %d out of bounds", i)
		}
		s := buf[off:end]
		t := Target{
			Start:  byteOrder.Uint64(s[offSpecStart:]),
			Length: byteOrder.Uint64(s[offSpecLength:]),
			Status: int32(byteOrder.Uint32(s[offSpecStatus:])),
			Type:   cstr(s[offSpecType : offSpecType+typeLen]),
		}
		p := s[specSize:]
		n := 0
		for n < len(p) && p[n] != 0 {
			n++
		}
		t.Params = append([]byte(nil), p[:n]...)
		out = append(out, t)
		next := int(byteOrder.Uint32(s[offSpecNext:]))
		if i+1 < in.TargetCount {
			if base+next <= off {
				return nil, fmt.Errorf("device-mapper answer: target %d has a bad next offset", i)
			}
			off = base + next
		}
	}
	return out, nil
}

package dm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The x/sys structs are generated from the kernel's uapi header by
// cgo -godefs: an oracle for our hand-written offsets.
func TestLayoutMatchesKernelHeader(t *testing.T) {
	var h unix.DmIoctl
	var s unix.DmTargetSpec
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof dm_ioctl", headerSize, unsafe.Sizeof(h)},
		{"sizeof dm_target_spec", specSize, unsafe.Sizeof(s)},
		{"data_size", offDataSize, unsafe.Offsetof(h.Data_size)},
		{"data_start", offDataStart, unsafe.Offsetof(h.Data_start)},
		{"target_count", offTargetCount, unsafe.Offsetof(h.Target_count)},
		{"open_count", offOpenCount, unsafe.Offsetof(h.Open_count)},
		{"flags", offFlags, unsafe.Offsetof(h.Flags)},
		{"event_nr", offEventNr, unsafe.Offsetof(h.Event_nr)},
		{"dev", offDev, unsafe.Offsetof(h.Dev)},
		{"name", offName, unsafe.Offsetof(h.Name)},
		{"uuid", offUUID, unsafe.Offsetof(h.Uuid)},
		{"spec.length", offSpecLength, unsafe.Offsetof(s.Length)},
		{"spec.status", offSpecStatus, unsafe.Offsetof(s.Status)},
		{"spec.next", offSpecNext, unsafe.Offsetof(s.Next)},
		{"spec.target_type", offSpecType, unsafe.Offsetof(s.Target_type)},
		{"name len", nameLen, uintptr(len(h.Name))},
		{"uuid len", uuidLen, uintptr(len(h.Uuid))},
		{"type len", typeLen, uintptr(len(s.Target_type))},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: ours %d, kernel header %d", c.name, c.got, c.want)
		}
	}
	if headerSize%align != 0 {
		t.Errorf("header size %d not 8-aligned", headerSize)
	}
}

// Golden bytes of a one-target DM_TABLE_LOAD request (little-endian hosts).
func TestMarshalTableLoadGolden(t *testing.T) {
	if byteOrder.Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden bytes are little-endian")
	}
	params := "aes-xts-plain64 :32:logon:rules_dm:x 0 /dev/vda 0" // 49 bytes + NUL -> 56
	buf, err := marshal("dmroot", FlagReadOnly|FlagSecureData, []Target{{Start: 0, Length: 16384, Type: "crypt", Params: []byte(params)}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 0, 408)
	hdr := "04000000" + "00000000" + "00000000" + // version 4.0.0
		"98010000" + // data_size 408 = 312 + 40 + 56
		"38010000" + // data_start 312
		"01000000" + // target_count 1
		"00000000" + // open_count
		"01800000" + // flags: READONLY | SECURE_DATA (0x8000)
		"00000000" + "00000000" + // event_nr, padding
		"0000000000000000" // dev
	want = append(want, mustHex(t, hdr)...)
	name := make([]byte, nameLen+uuidLen+7)
	copy(name, "dmroot")
	want = append(want, name...)
	spec := "0000000000000000" + // sector_start
		"0040000000000000" + // length 16384
		"00000000" + // status
		"60000000" + // next = 40 + 56 = 96
		hex.EncodeToString([]byte("crypt")) + strings.Repeat("00", 11)
	want = append(want, mustHex(t, spec)...)
	p := make([]byte, 56)
	copy(p, params)
	want = append(want, p...)
	if len(want) != 408 {
		t.Fatalf("golden is %d bytes", len(want))
	}
	if !bytes.Equal(buf, want) {
		t.Fatalf("marshal mismatch\n got %x\nwant %x", buf, want)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalPaddingAndNext(t *testing.T) {
	for n := 0; n < 20; n++ {
		p := bytes.Repeat([]byte{'a'}, n)
		buf, err := marshal("x", 0, []Target{{Length: 8, Type: "zero", Params: p}, {Start: 8, Length: 8, Type: "error"}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		next := int(byteOrder.Uint32(buf[headerSize+offSpecNext:]))
		if next%8 != 0 || next < specSize+n+1 || next >= specSize+n+1+8 {
			t.Errorf("params %d bytes: next=%d", n, next)
		}
		if len(buf)%8 != 0 || int(byteOrder.Uint32(buf[offDataSize:])) != len(buf) {
			t.Errorf("params %d bytes: size %d", n, len(buf))
		}
		second := buf[headerSize+next:]
		if byteOrder.Uint64(second[offSpecStart:]) != 8 || cstr(second[offSpecType:offSpecType+typeLen]) != "error" {
			t.Errorf("params %d bytes: second spec misplaced", n)
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	bad := []struct {
		name string
		t    []Target
	}{
		{"a/b", nil},
		{"a b", nil},
		{strings.Repeat("n", 128), nil},
		{"..", nil},
		{"ok", []Target{{Type: "", Length: 1}}},
		{"ok", []Target{{Type: "averyveryverylongtype", Length: 1}}},
		{"ok", []Target{{Type: "zero", Length: 1, Params: []byte("a\x00b")}}},
	}
	for _, b := range bad {
		if _, err := marshal(b.name, 0, b.t, 0); err == nil {
			t.Errorf("marshal(%q, %v) accepted", b.name, b.t)
		}
	}
	if _, err := marshal(strings.Repeat("n", 127), 0, nil, 0); err != nil {
		t.Errorf("127-byte name rejected: %v", err)
	}
}

// kernelStatusAnswer builds what the kernel writes for DM_TABLE_STATUS: specs
// at data_start, "next" relative to the first spec.
func kernelStatusAnswer(size int, targets []Target, flags uint32) []byte {
	buf := make([]byte, size)
	byteOrder.PutUint32(buf[offVersion:], 4)
	byteOrder.PutUint32(buf[offVersion+4:], 47)
	byteOrder.PutUint32(buf[offDataStart:], headerSize)
	byteOrder.PutUint32(buf[offTargetCount:], uint32(len(targets)))
	byteOrder.PutUint32(buf[offFlags:], flags)
	byteOrder.PutUint64(buf[offDev:], unix.Mkdev(254, 3))
	rel := 0
	for _, t := range targets {
		s := buf[headerSize+rel:]
		byteOrder.PutUint64(s[offSpecStart:], t.Start)
		byteOrder.PutUint64(s[offSpecLength:], t.Length)
		copy(s[offSpecType:], t.Type)
		copy(s[specSize:], t.Params)
		rel += specSize + align8(len(t.Params)+1)
		byteOrder.PutUint32(s[offSpecNext:], uint32(rel))
	}
	byteOrder.PutUint32(buf[offDataSize:], uint32(headerSize+rel))
	return buf
}

func TestParseTargets(t *testing.T) {
	in := []Target{
		{Start: 0, Length: 100, Type: "linear", Params: []byte("254:0 0")},
		{Start: 100, Length: 28, Type: "verity", Params: []byte("1 254:0 254:0 4096 4096 2048 2049 sha256 ab cd")},
		{Start: 128, Length: 8, Type: "zero", Params: []byte("")},
	}
	buf := kernelStatusAnswer(4096, in, FlagActivePresent)
	info, err := parseInfo(buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Major() != 254 || info.Minor() != 3 || info.TargetCount != 3 {
		t.Fatalf("info %+v", info)
	}
	got, err := parseTargets(buf, info)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d targets", len(got))
	}
	for i := range in {
		if got[i].Start != in[i].Start || got[i].Length != in[i].Length || got[i].Type != in[i].Type || string(got[i].Params) != string(in[i].Params) {
			t.Errorf("target %d: %+v want %+v", i, got[i], in[i])
		}
	}
	// Truncated answers are errors, not panics.
	for _, n := range []int{headerSize + 10, headerSize + specSize + 3} {
		b := append([]byte(nil), buf[:n]...)
		info, _ := parseInfo(b)
		info.DataSize = uint32(n)
		if _, err := parseTargets(b, info); err == nil && n < headerSize+specSize {
			t.Errorf("truncated answer (%d bytes) accepted", n)
		}
	}
}

// fake kernel: records requests and answers table status with a buffer-full
// first.
func TestControlWithFakeKernel(t *testing.T) {
	var reqs []uintptr
	var loaded []byte
	calls := 0
	c := &Control{fd: -1}
	c.do = func(req uintptr, buf []byte) error {
		reqs = append(reqs, req)
		switch req {
		case unix.DM_TABLE_LOAD:
			loaded = buf // kept to check the wipe
			if byteOrder.Uint32(buf[offFlags:])&FlagReadOnly == 0 {
				t.Error("load without read-only flag")
			}
		case unix.DM_TABLE_STATUS:
			calls++
			if calls == 1 {
				byteOrder.PutUint32(buf[offFlags:], FlagBufferFull)
				return nil
			}
			if byteOrder.Uint32(buf[offFlags:])&FlagStatusTable == 0 {
				t.Error("status without DM_STATUS_TABLE_FLAG")
			}
			copy(buf, kernelStatusAnswer(len(buf), []Target{{Length: 8, Type: "crypt", Params: []byte("aes :32:logon:a:b 0 254:0 0")}}, FlagActivePresent))
		case unix.DM_DEV_STATUS:
			return unix.ENXIO
		case unix.DM_DEV_REMOVE:
			if len(reqs) < 6 {
				return unix.EBUSY
			}
		}
		return nil
	}
	if err := c.Load("n", []Target{{Length: 8, Type: "crypt", Params: []byte("secretsecret")}}, true); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(loaded, []byte("secret")) {
		t.Error("load buffer not wiped")
	}
	_, tg, err := c.Table("n")
	if err != nil || len(tg) != 1 || tg[0].Type != "crypt" || calls != 2 {
		t.Fatalf("table: %v %+v calls=%d", err, tg, calls)
	}
	if _, err := c.Status("gone"); !IsNotExist(err) {
		t.Errorf("status of missing device: %v", err)
	}
	if err := c.Remove("n"); err != nil {
		t.Errorf("remove with busy retries: %v", err)
	}
	c.do = func(uintptr, []byte) error { return unix.ENOKEY }
	err = c.Load("n", []Target{{Length: 8, Type: "crypt", Params: []byte("KEYMATERIAL")}}, false)
	if err == nil || strings.Contains(err.Error(), "KEYMATERIAL") || !errors.Is(err, unix.ENOKEY) {
		t.Errorf("load error %v", err)
	}
}

// FuzzParseAnswer: a device-mapper answer (header + target specs) of any
// shape decodes or fails without panicking or reading out of bounds.
func FuzzParseAnswer(f *testing.F) {
	b, err := marshal("x", 0, []Target{{Start: 0, Length: 8, Type: "verity", Params: []byte("1 a b")}, {Start: 8, Length: 8, Type: "crypt", Params: []byte("p")}}, 64)
	if err == nil {
		f.Add(b)
	}
	f.Add(make([]byte, headerSize))
	f.Fuzz(func(t *testing.T, buf []byte) {
		in, err := parseInfo(buf)
		if err != nil {
			return
		}
		ts, err := parseTargets(buf, in)
		if err == nil && len(ts) > len(buf) {
			t.Fatalf("%d targets from %d bytes", len(ts), len(buf))
		}
	})
}

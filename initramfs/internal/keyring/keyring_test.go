package keyring

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAddLogon(t *testing.T) {
	var gotType, gotDesc string
	var gotRing int
	var gotPayload []byte
	addKey = func(typ, desc string, payload []byte, ring int) (int, error) {
		gotType, gotDesc, gotRing = typ, desc, ring
		gotPayload = append([]byte(nil), payload...)
		return 42, nil
	}
	defer func() { addKey = unix.AddKey }()
	key := bytes.Repeat([]byte{0xab}, 64)
	ref, id, err := AddLogon("rules_dm:dmroot", key)
	if err != nil {
		t.Fatal(err)
	}
	if ref != ":64:logon:rules_dm:dmroot" || id != 42 {
		t.Errorf("ref %q id %d", ref, id)
	}
	if gotType != "logon" || gotDesc != "rules_dm:dmroot" || gotRing != unix.KEY_SPEC_USER_KEYRING || !bytes.Equal(gotPayload, key) {
		t.Errorf("add_key(%q, %q, ring %d)", gotType, gotDesc, gotRing)
	}
}

func TestAddLogonErrors(t *testing.T) {
	addKey = func(string, string, []byte, int) (int, error) { return 0, unix.EDQUOT }
	defer func() { addKey = unix.AddKey }()
	_, _, err := AddLogon("rules_dm:x", []byte("SECRETKEYBYTES"))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %v", err)
	}
	for _, d := range []string{"noprefix", ":x", "p:", "a b:c", "p:x\n", ""} {
		if _, _, err := AddLogon(d, []byte{1}); err == nil {
			t.Errorf("description %q accepted", d)
		}
	}
	if _, _, err := AddLogon("p:x", nil); err == nil {
		t.Error("empty key accepted")
	}
	if !Unavailable(unix.ENOSYS) || Unavailable(unix.EINVAL) {
		t.Error("Unavailable")
	}
}

func TestAddUser(t *testing.T) {
	var gotType, gotDesc string
	var gotRing int
	var gotPayload []byte
	addKey = func(typ, desc string, payload []byte, ring int) (int, error) {
		gotType, gotDesc, gotRing = typ, desc, ring
		gotPayload = append([]byte(nil), payload...)
		return 7, nil
	}
	defer func() { addKey = unix.AddKey }()
	sig := []byte{0x30, 0x82, 1, 2, 3}
	id, err := AddUser("rules_dm:dmroot:roothash-sig", sig)
	if err != nil || id != 7 {
		t.Fatalf("id %d err %v", id, err)
	}
	if gotType != "user" || gotDesc != "rules_dm:dmroot:roothash-sig" || gotRing != unix.KEY_SPEC_USER_KEYRING || !bytes.Equal(gotPayload, sig) {
		t.Errorf("add_key(%q, %q, ring %d, %x)", gotType, gotDesc, gotRing, gotPayload)
	}
	for _, p := range [][]byte{nil, make([]byte, MaxUserPayload+1)} {
		if _, err := AddUser("p:x", p); err == nil {
			t.Errorf("payload of %d bytes accepted", len(p))
		}
	}
	if _, err := AddUser("a b", sig); err == nil {
		t.Error("bad description accepted")
	}
	addKey = func(string, string, []byte, int) (int, error) { return 0, unix.EDQUOT }
	if _, err := AddUser("p:x", sig); err == nil || !strings.Contains(err.Error(), "add_key user p:x to @u") {
		t.Errorf("error %v", err)
	}
}

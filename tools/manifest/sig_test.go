package manifest

import (
	"bytes"
	"strings"
	"testing"
)

// signed returns a verity-then-crypt sample with a root hash signature and
// boot artifacts.
func signed() *Manifest {
	m := sample(StackVerityThenCrypt)
	v := m.Layers[0].Verity
	v.RootHashSig, v.RootHashSigKeyDesc = "verity.roothash.p7s", SigKeyDesc(m.Layers[0].Name)
	v.Opts = "root_hash_sig_key_desc " + v.RootHashSigKeyDesc
	m.Artifacts = append(m.Artifacts,
		Artifact{Role: RoleSignature, Path: "verity.roothash.p7s", Size: 500, SHA256: strings.Repeat("1", 64)},
		Artifact{Role: RoleBoot, Path: "boot/veritytab", Size: 200, SHA256: strings.Repeat("2", 64)},
		Artifact{Role: RoleBoot, Path: "boot/crypttab", Size: 100, SHA256: strings.Repeat("3", 64)})
	return m
}

func TestSignedManifest(t *testing.T) {
	m := signed()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
	env := WriteEnv(m)
	for _, want := range []string{"DMTOOLS_L0_VERITY_SIG_PATH='verity.roothash.p7s'\n",
		"DMTOOLS_L0_VERITY_SIG_DESC='rules_dm:dmroot-verity:roothash-sig'\n",
		"DMTOOLS_L0_VERITY_OPTS='root_hash_sig_key_desc rules_dm:dmroot-verity:roothash-sig'\n"} {
		if !bytes.Contains(env, []byte(want)) {
			t.Fatalf("env lacks %q:\n%s", want, env)
		}
	}
	e, err := ParseEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := FromEnv(e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(WriteEnv(m2), env) || m2.Layers[0].Verity.RootHashSigKeyDesc != m.Layers[0].Verity.RootHashSigKeyDesc {
		t.Fatal("env round trip of a signed manifest")
	}
	breaks := map[string]func(m *Manifest){
		"no sig artifact":   func(m *Manifest) { m.Artifacts = append(m.Artifacts[:1], m.Artifacts[2:]...) },
		"sig without layer": func(m *Manifest) { v := m.Layers[0].Verity; v.RootHashSig, v.RootHashSigKeyDesc, v.Opts = "", "", "" },
		"desc not in opts":  func(m *Manifest) { m.Layers[0].Verity.Opts = "" },
		"desc alone":        func(m *Manifest) { m.Layers[0].Verity.RootHashSig = "" },
		"other desc in opts": func(m *Manifest) {
			m.Layers[0].Verity.Opts = "root_hash_sig_key_desc rules_dm:other"
		},
		"boot path plain":  func(m *Manifest) { m.Artifacts[2].Path = "veritytab" },
		"boot path dotdot": func(m *Manifest) { m.Artifacts[2].Path = "boot/../x" },
		"sig path slash":   func(m *Manifest) { m.Artifacts[1].Path = "boot/x.p7s" },
		"two signatures":   func(m *Manifest) { m.Artifacts[2].Role = RoleSignature },
	}
	for name, f := range breaks {
		m := signed()
		f(m)
		if err := m.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAEADShape(t *testing.T) {
	m := sample(StackIntegrityThenCrypt)
	m.Layers[1].Crypt.Integrity = "4:aead"
	if m.Validate() == nil {
		t.Fatal("an aead crypt layer in profile plain-crypt accepted")
	}
	m.Profile = ProfileAEAD
	m.Layers[0].Integrity.Hash = "none"
	m.Layers[0].Table = strings.Replace(m.Layers[0].Table, " fix_hmac internal_hash:crc32c", "", 1)
	m.Layers[0].Table = strings.Replace(m.Layers[0].Table, " J 9 ", " J 7 ", 1)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	m2 := sample(StackCryptOnly)
	m2.Profile = ProfileAEAD
	if m2.Validate() == nil {
		t.Fatal("profile aead on crypt-only accepted")
	}
}

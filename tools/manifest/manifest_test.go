package manifest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestSamplesValidateAndRoundTrip(t *testing.T) {
	for _, st := range Stacks {
		m := sample(st)
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("%s: marshal: %v", st, err)
		}
		m2, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: parse: %v", st, err)
		}
		b2, _ := Marshal(m2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("%s: marshal not stable", st)
		}
		env := WriteEnv(m)
		e, err := ParseEnv(env)
		if err != nil {
			t.Fatalf("%s: ParseEnv: %v\n%s", st, err, env)
		}
		m3, err := FromEnv(e)
		if err != nil {
			t.Fatalf("%s: FromEnv: %v\n%s", st, err, env)
		}
		if env2 := WriteEnv(m3); !bytes.Equal(env, env2) {
			t.Fatalf("%s: env round trip differs:\n%s\n---\n%s", st, env, env2)
		}
		if m3.NeedsMeta() != m.NeedsMeta() || m3.Top() != "dmroot" || len(m3.Layers) != len(m.Layers) {
			t.Fatalf("%s: FromEnv lost facts", st)
		}
		for i, l := range m3.Layers {
			if l.Verity != nil && (*l.Verity).RootHash != m.Layers[i].Verity.RootHash {
				t.Fatalf("%s: verity root lost", st)
			}
			if l.Crypt != nil && (l.Crypt.KeySize != 64 || l.Crypt.SectorSize != 4096 || l.Crypt.KeyDesc != "rules_dm:dmroot") {
				t.Fatalf("%s: crypt facts lost: %+v", st, l.Crypt)
			}
		}
	}
}

func TestEnvOrder(t *testing.T) {
	env := string(WriteEnv(sample(StackVerityThenCrypt)))
	var keys []string
	for _, l := range strings.Split(strings.TrimSpace(env), "\n") {
		if l[0] == '#' {
			continue
		}
		keys = append(keys, l[:strings.IndexByte(l, '=')])
	}
	want := "DMTOOLS_SCHEMA_VERSION DMTOOLS_STACK DMTOOLS_PROFILE DMTOOLS_NAME DMTOOLS_INPUT_SIZE DMTOOLS_INPUT_SHA256 " +
		"DMTOOLS_DATA_PATH DMTOOLS_DATA_SIZE DMTOOLS_DATA_SHA256 DMTOOLS_NEEDS_META DMTOOLS_LAYERS DMTOOLS_TOP " +
		"DMTOOLS_L0_TARGET DMTOOLS_L0_NAME DMTOOLS_L0_SECTORS DMTOOLS_L0_TABLE DMTOOLS_L0_VERITY_OPTS DMTOOLS_L0_VERITY_ROOT_HASH " +
		"DMTOOLS_L1_TARGET DMTOOLS_L1_NAME DMTOOLS_L1_SECTORS DMTOOLS_L1_TABLE DMTOOLS_L1_CRYPT_KEY_SIZE DMTOOLS_L1_CRYPT_KEY_DESC " +
		"DMTOOLS_MOUNT_FSTYPE DMTOOLS_NEWROOT DMTOOLS_MOUNT_OPTS"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("key order\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(env, "DMTOOLS_L1_TABLE='0 16384 crypt aes-xts-plain64 @KEY@ 0 @LOWER@ 0 1 sector_size:4096'\n") {
		t.Fatalf("crypt table line missing:\n%s", env)
	}
}

func TestParseEnvRejectsHostile(t *testing.T) {
	good := string(WriteEnv(sample(StackCryptOnly)))
	cases := map[string]string{
		"command substitution": "DMTOOLS_NAME='$(reboot)'",
		"backtick":             "DMTOOLS_NAME='`id`'",
		"semicolon":            "DMTOOLS_NAME='a;b'",
		"trailing command":     "DMTOOLS_NAME='a'; reboot",
		"unquoted":             "DMTOOLS_NAME=a",
		"double quotes":        `DMTOOLS_NAME="a"`,
		"export":               "export DMTOOLS_NAME='a'",
		"space before =":       "DMTOOLS_NAME ='a'",
		"unknown key":          "DMTOOLS_EVIL='a'",
		"not dmtools":          "PATH='/tmp'",
		"layer 8":              "DMTOOLS_L8_TARGET='crypt'",
		"bad layer suffix":     "DMTOOLS_L0_CMD='a'",
		"backslash":            `DMTOOLS_NAME='a\'`,
		"quote inside":         "DMTOOLS_NAME='a'b'",
		"cr":                   "DMTOOLS_NAME='a'\r",
		"open quote newline":   "DMTOOLS_NAME='a\nb'",
		"dollar var":           "DMTOOLS_NAME='$HOME'",
		"pipe":                 "DMTOOLS_NAME='a|b'",
		"redirect":             "DMTOOLS_NAME='a>b'",
		"nul":                  "DMTOOLS_NAME='a\x00'",
	}
	for name, line := range cases {
		bad := strings.Replace(good, "DMTOOLS_NAME='dmroot'", line, 1)
		if bad == good {
			t.Fatalf("%s: replacement failed", name)
		}
		if _, err := ParseEnv([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "reboot") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error echoes the input or spans lines: %v", name, err)
		}
	}
	// duplicate key
	if _, err := ParseEnv([]byte(good + "DMTOOLS_NAME='x'\n")); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate: %v", err)
	}
	// syntactically fine but semantically broken: FromEnv rejects
	for name, repl := range map[string][2]string{
		"missing key":     {"DMTOOLS_TOP='dmroot'\n", ""},
		"bad number":      {"DMTOOLS_L0_SECTORS='16384'", "DMTOOLS_L0_SECTORS='0x10'"},
		"extra layer key": {"DMTOOLS_MOUNT_FSTYPE", "DMTOOLS_L1_NAME='x'\nDMTOOLS_MOUNT_FSTYPE"},
		"foreign key":     {"DMTOOLS_MOUNT_FSTYPE", "DMTOOLS_L0_VERITY_OPTS=''\nDMTOOLS_MOUNT_FSTYPE"},
		"bad table":       {"@KEY@ 0 @DATA@", "@KEY@ 0 /dev/sda"},
		"too many layers": {"DMTOOLS_LAYERS='1'", "DMTOOLS_LAYERS='9'"},
		"schema":          {"DMTOOLS_SCHEMA_VERSION='1'", "DMTOOLS_SCHEMA_VERSION='2'"},
	} {
		bad := strings.Replace(good, repl[0], repl[1], 1)
		if bad == good {
			t.Fatalf("%s: replacement failed", name)
		}
		e, err := ParseEnv([]byte(bad))
		if err != nil {
			continue
		}
		if _, err := FromEnv(e); err == nil {
			t.Errorf("%s: FromEnv accepted", name)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]func(m *Manifest){
		"schema":          func(m *Manifest) { m.SchemaVersion = 2 },
		"stack":           func(m *Manifest) { m.Stack = "crypt-twice" },
		"profile":         func(m *Manifest) { m.Profile = "x" },
		"path slash":      func(m *Manifest) { m.Artifacts[0].Path = "a/data.img" },
		"path dotdot":     func(m *Manifest) { m.Artifacts[0].Path = ".." },
		"path abs":        func(m *Manifest) { m.Artifacts[0].Path = "/etc/passwd" },
		"path dotdot2":    func(m *Manifest) { m.Artifacts[0].Path = "..data" },
		"sha":             func(m *Manifest) { m.Artifacts[0].SHA256 = strings.Repeat("G", 64) },
		"input sha upper": func(m *Manifest) { m.Input.SHA256 = strings.Repeat("A", 64) },
		"layers":          func(m *Manifest) { m.Layers = append(m.Layers, m.Layers...) },
		"nine layers": func(m *Manifest) {
			for len(m.Layers) < 9 {
				m.Layers = append(m.Layers, m.Layers[0])
			}
		},
		"table dollar":    func(m *Manifest) { m.Layers[1].Table += " $(reboot)" },
		"table semicolon": func(m *Manifest) { m.Layers[1].Table += ";" },
		"table unknown @": func(m *Manifest) { m.Layers[1].Table = strings.Replace(m.Layers[1].Table, "@LOWER@", "@EVIL@", 1) },
		"table 2 spaces":  func(m *Manifest) { m.Layers[1].Table += "  1" },
		"table newline":   func(m *Manifest) { m.Layers[1].Table += "\n0 1 zero" },
		"verity mismatch": func(m *Manifest) { m.Layers[0].Verity.DataBlocks = 5 },
		"root hex":        func(m *Manifest) { m.Layers[0].Verity.RootHash = "zz" },
		"salt hex":        func(m *Manifest) { m.Layers[0].Verity.Salt = "abc" },
		"top name":        func(m *Manifest) { m.Name = "other" },
		"two objects":     func(m *Manifest) { m.Layers[1].Verity = m.Layers[0].Verity },
		"index":           func(m *Manifest) { m.Layers[1].Index = 5 },
		"layer0 lower":    func(m *Manifest) { m.Layers[0].Device = "lower" },
		"name chars":      func(m *Manifest) { m.Name = "a b"; m.Layers[1].Name = "a b" },
		"newroot":         func(m *Manifest) { m.Mount.NewRoot = "/a/../b" },
		"meta unused": func(m *Manifest) {
			m.Artifacts = append(m.Artifacts, Artifact{Role: "meta", Path: "x.img", Size: 1, SHA256: hexA})
		},
		"key size": func(m *Manifest) { m.Layers[1].Crypt.KeySize = 0 },
	}
	for name, f := range cases {
		m := sample(StackVerityThenCrypt)
		f(m)
		if err := m.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// unknown JSON field, trailing data
	b, _ := Marshal(sample(StackCryptOnly))
	if _, err := Parse(bytes.Replace(b, []byte(`"name"`), []byte(`"evil": 1, "name"`), 1)); err == nil {
		t.Error("unknown field accepted")
	}
	if _, err := Parse(append(b, []byte("{}")...)); err == nil {
		t.Error("trailing data accepted")
	}
	var generic map[string]any
	json.Unmarshal(b, &generic)
	if _, err := Parse([]byte(`{"schema_version": 1}`)); err == nil {
		t.Error("empty manifest accepted")
	}
}

func TestSubstitute(t *testing.T) {
	tpl := "0 8 integrity @DATA@ 0 32 J 2 meta_device:@META@ internal_hash:hmac(sha256):@IKEY@"
	got := Substitute(tpl, map[string]string{"DATA": "/dev/vda", "@META@": "/dev/vdb", "IKEY": "@DATA@"})
	want := "0 8 integrity /dev/vda 0 32 J 2 meta_device:/dev/vdb internal_hash:hmac(sha256):@DATA@"
	if got != want {
		t.Fatalf("got %q", got)
	}
	if u := Unresolved(Substitute("crypt @KEY@ @LOWER@", map[string]string{"LOWER": "/dev/mapper/x"})); len(u) != 1 || u[0] != "@KEY@" {
		t.Fatalf("unresolved %v", u)
	}
}

package manifest

import (
	"bytes"
	"testing"
)

func FuzzParseEnv(f *testing.F) {
	for _, st := range Stacks {
		f.Add(WriteEnv(sample(st)))
	}
	f.Add([]byte("DMTOOLS_NAME='$(reboot)'\n"))
	f.Add([]byte("# c\n\nDMTOOLS_SCHEMA_VERSION='1'\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnv(b)
		if err != nil {
			return
		}
		for _, k := range e.Keys {
			if !KnownEnvKey(k) || !ValidEnvValue(e.Values[k]) {
				t.Fatalf("accepted bad %s", k)
			}
		}
		m, err := FromEnv(e)
		if err != nil {
			return
		}
		// whatever FromEnv accepts must render and read back identically
		out := WriteEnv(m)
		e2, err := ParseEnv(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		m2, err := FromEnv(e2)
		if err != nil {
			t.Fatalf("re-FromEnv: %v", err)
		}
		if !bytes.Equal(WriteEnv(m2), out) {
			t.Fatal("env not stable")
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	for _, st := range Stacks {
		b, _ := Marshal(sample(st))
		f.Add(b)
	}
	f.Add([]byte(`{"schema_version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		out, err := Marshal(m)
		if err != nil {
			t.Fatalf("valid manifest does not marshal: %v", err)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		out2, _ := Marshal(m2)
		if !bytes.Equal(out, out2) {
			t.Fatal("marshal not stable")
		}
		// a valid manifest always gives a valid env
		if _, err := ParseEnv(WriteEnv(m)); err != nil {
			t.Fatalf("env of a valid manifest rejected: %v", err)
		}
	})
}

// FuzzTable: dm table templates (ValidateTable, the per-target table readers
// used by FromEnv, Substitute/Unresolved) never panic, and substituting every
// placeholder leaves none unresolved.
func FuzzTable(f *testing.F) {
	for _, st := range Stacks {
		for _, l := range sample(st).Layers {
			f.Add(l.Table)
		}
	}
	f.Add("0 8 crypt aes-xts-plain64 @KEY@ 0 @LOWER@ 0 3 sector_size:4096 iv_large_sectors x")
	f.Add("0 8 integrity @DATA@ 0 4 J 99 meta_device:@META@")
	f.Fuzz(func(t *testing.T, tbl string) {
		valid := ValidateTable(tbl) == nil
		verityFromTable(tbl)
		cryptFromTable(tbl, &Crypt{})
		integrityFromTable(tbl)
		all := map[string]string{"DATA": "/dev/vda", "META": "/dev/vdb", "LOWER": "/dev/mapper/x", "KEY": ":32:logon:a:b", "IKEY": "00"}
		if out := Substitute(tbl, all); valid && len(Unresolved(out)) != 0 {
			t.Fatalf("valid template %q still has %v after substitution: %q", tbl, Unresolved(out), out)
		}
	})
}

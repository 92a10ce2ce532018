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

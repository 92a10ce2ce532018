package compose

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	in := writeInput(t, 1<<20)
	o := opts(in, filepath.Join(t.TempDir(), "out"), "integrity-then-crypt")
	o.Profile, o.Key = "aead", key64[:32]
	if _, err := Build(o); err != nil {
		t.Fatal(err)
	}
	got, err := Inspect(o.OutDir, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Problems) != 0 || len(got.Layers) != 2 || got.Layers[1].On != "/dev/mapper/dmroot-integrity" ||
		!strings.Contains(got.Layers[0].On, "META_DEV") || len(got.Keys) != 1 || got.Keys[0].Size != 32 {
		t.Fatalf("%+v", got)
	}
	var txt, js bytes.Buffer
	got.WriteText(&txt)
	for _, want := range []string{"integrity-then-crypt (profile aead)", "hash none, tag 28", "integrity:28:aead",
		"32-byte key", "logon:rules_dm:dmroot", "sha256 matches"} {
		if !strings.Contains(txt.String(), want) {
			t.Fatalf("text lacks %q:\n%s", want, txt.String())
		}
	}
	if err := got.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back["stack"] != "integrity-then-crypt" {
		t.Fatalf("json: %v", err)
	}
	// a flipped byte: only --deep sees it; a short file: always
	meta := filepath.Join(o.OutDir, IntegrityMeta)
	b, _ := os.ReadFile(meta)
	b[100] ^= 1
	os.WriteFile(meta, b, 0o644)
	if got, _ := Inspect(filepath.Join(o.OutDir, ManifestJSON), false); len(got.Problems) != 0 {
		t.Fatalf("shallow: %v", got.Problems)
	}
	if got, _ := Inspect(o.OutDir, true); len(got.Problems) != 1 || got.Artifacts[1].SHA256Status != "mismatch" {
		t.Fatalf("deep: %v", got.Problems)
	}
	os.Truncate(filepath.Join(o.OutDir, DataFile), 4096)
	if got, _ := Inspect(o.OutDir, false); len(got.Problems) != 1 || got.Artifacts[0].SizeOK {
		t.Fatalf("short: %v", got.Problems)
	}
	if _, err := Inspect(t.TempDir(), false); err == nil {
		t.Fatal("empty dir accepted")
	}
}

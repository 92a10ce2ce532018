package manifest_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rules-dm/rules_dm/tools/manifest"
	"github.com/rules-dm/rules_dm/tools/manifest/schematest"
)

// TestSchemaAgreesWithValidate checks the samples of every stack against
// spec/manifest.schema.json, and that broken variants fail both the schema
// and Parse.
func TestSchemaAgreesWithValidate(t *testing.T) {
	for _, st := range manifest.Stacks {
		b, err := manifest.Marshal(manifest.Sample(st))
		if err != nil {
			t.Fatal(err)
		}
		if err := schematest.Validate(b); err != nil {
			t.Fatalf("%s: schema rejects a valid manifest: %v", st, err)
		}
	}
	sb, err := manifest.Marshal(manifest.Signed())
	if err != nil {
		t.Fatal(err)
	}
	if err := schematest.Validate(sb); err != nil {
		t.Fatalf("signed: schema rejects a valid manifest: %v", err)
	}
	var sm map[string]any
	json.Unmarshal(sb, &sm)
	sm["artifacts"].([]any)[3].(map[string]any)["path"] = "veritytab"
	if bb, _ := json.Marshal(sm); schematest.Validate(bb) == nil {
		t.Fatal("schema accepts a boot artifact outside boot/")
	}
	json.Unmarshal(sb, &sm)
	sm["artifacts"].([]any)[1].(map[string]any)["path"] = "boot/x.p7s"
	if bb, _ := json.Marshal(sm); schematest.Validate(bb) == nil {
		t.Fatal("schema accepts a signature artifact under boot/")
	}
	b, _ := manifest.Marshal(manifest.Sample(manifest.StackVerityThenCrypt))
	breaks := map[string]func(m map[string]any){
		"schema_version": func(m map[string]any) { m["schema_version"] = 2 },
		"stack":          func(m map[string]any) { m["stack"] = "nope" },
		"unknown field":  func(m map[string]any) { m["key"] = "00" },
		"path slash":     func(m map[string]any) { art(m)["path"] = "../data.img" },
		"path abs":       func(m map[string]any) { art(m)["path"] = "/data.img" },
		"sha":            func(m map[string]any) { art(m)["sha256"] = "xyz" },
		"table dollar":   func(m map[string]any) { layer(m, 1)["table"] = "0 16384 crypt $(x) @KEY@" },
		"table @":        func(m map[string]any) { layer(m, 1)["table"] = "0 16384 crypt aes @EVIL@" },
		"no layers":      func(m map[string]any) { m["layers"] = []any{} },
		"nine layers": func(m map[string]any) {
			l := m["layers"].([]any)
			for len(l) < 9 {
				l = append(l, l[1])
			}
			m["layers"] = l
		},
		"two objects":  func(m map[string]any) { layer(m, 1)["verity"] = layer(m, 0)["verity"] },
		"crypt no key": func(m map[string]any) { layer(m, 1)["table"] = "0 16384 crypt aes-xts-plain64 00 0 @LOWER@ 0" },
		"salt":         func(m map[string]any) { layer(m, 0)["verity"].(map[string]any)["salt"] = "abc" },
		"layer0 lower": func(m map[string]any) { layer(m, 0)["device"] = "lower" },
	}
	for name, f := range breaks {
		var g map[string]any
		json.Unmarshal(b, &g)
		f(g)
		bb, _ := json.Marshal(g)
		if err := schematest.Validate(bb); err == nil {
			t.Errorf("%s: schema accepted", name)
		}
		if _, err := manifest.Parse(bb); err == nil {
			t.Errorf("%s: Parse accepted", name)
		}
	}
	if bytes.Contains(b, []byte("key_hex")) {
		t.Fatal("key in manifest")
	}
}

func art(m map[string]any) map[string]any { return m["artifacts"].([]any)[0].(map[string]any) }
func layer(m map[string]any, i int) map[string]any {
	return m["layers"].([]any)[i].(map[string]any)
}

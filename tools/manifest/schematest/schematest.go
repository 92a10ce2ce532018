// Package schematest validates manifest.json bytes against
// spec/manifest.schema.json (JSON Schema 2020-12) for tests. It is a separate
// package so that the activators importing tools/manifest do not link a JSON
// Schema engine.
package schematest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	once   sync.Once
	schema *jsonschema.Schema
	cerr   error
)

// SchemaPath is the location of spec/manifest.schema.json in the source tree.
func SchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "spec", "manifest.schema.json")
}

// Validate checks manifest.json bytes against the schema.
func Validate(b []byte) error {
	once.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		schema, cerr = c.Compile(SchemaPath())
	})
	if cerr != nil {
		return fmt.Errorf("compile schema: %w", cerr)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return schema.Validate(v)
}

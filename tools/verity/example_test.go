package verity_test

import (
	"bytes"
	"fmt"
	"log"
	"os"

	"github.com/rules-dm/rules_dm/tools/verity"
)

// A tree appended to the image it protects, with the salt and UUID derived
// from a seed, and the kernel table with the manifest's placeholders.
func ExampleFormat() {
	f, err := os.CreateTemp("", "verity-example-*.img")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const dataSize = 1 << 20
	if _, err := f.Write(bytes.Repeat([]byte("rules_dm"), dataSize/8)); err != nil {
		log.Fatal(err)
	}

	p := verity.DefaultParams()
	p.Salt = verity.DeriveSalt("//images:root", p)
	p.UUID = verity.DeriveUUID("//images:root", p, p.Salt)
	r, err := verity.Format(f, dataSize, f, dataSize, p) // tree right after the data
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("hash bytes:", r.HashBytes)
	fmt.Println(verity.Table(p, r, "@DATA@", "@DATA@"))
	// Output:
	// hash bytes: 16384
	// 0 2048 verity 1 @DATA@ @DATA@ 4096 4096 256 257 sha256 22068f76b00ffb71a6f7a1c1c7db717114ad3d698f35d5146e76b955ea2bb249 3aec74351f4f443e3632cdf216d531585118a725a1663cf5aff706ccc8a3c1f9
}

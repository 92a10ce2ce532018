package compose

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeSigner writes a throw-away self-signed RSA certificate with openssl.
func makeSigner(t *testing.T) (dir, key, cert string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir = t.TempDir()
	key, cert = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
		"-days", "3650", "-subj", "/CN=rules_dm test verity signer").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	return dir, key, cert
}

// TestSignMatchesOpenSSL: the signature is byte-identical to the kernel
// documentation's recipe (openssl smime -sign -nocerts -noattr -binary), and
// openssl cms -verify accepts it.
func TestSignMatchesOpenSSL(t *testing.T) {
	dir, key, cert := makeSigner(t)
	s, err := LoadSigner(key, cert)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte(strings.Repeat("0123456789abcdef", 4))
	sig, err := s.Sign(content)
	if err != nil {
		t.Fatal(err)
	}
	sig2, _ := s.Sign(content)
	if !bytes.Equal(sig, sig2) {
		t.Fatal("signature not deterministic")
	}
	if err := VerifyRootHashSig(sig, content, s.Cert()); err != nil {
		t.Fatal(err)
	}
	if VerifyRootHashSig(sig, append([]byte{}, content[1:]...), s.Cert()) == nil {
		t.Fatal("signature accepted for other content")
	}
	rh := filepath.Join(dir, "roothash.txt")
	os.WriteFile(rh, content, 0o644)
	ref := filepath.Join(dir, "ref.p7s")
	if out, err := exec.Command("openssl", "smime", "-sign", "-nocerts", "-noattr", "-binary", "-md", "sha256",
		"-in", rh, "-inkey", key, "-signer", cert, "-outform", "der", "-out", ref).CombinedOutput(); err != nil {
		t.Fatalf("openssl smime: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(ref)
	if !bytes.Equal(sig, want) {
		t.Errorf("signature differs from openssl smime -sign -nocerts -noattr:\n got %x\nwant %x", sig, want)
	}
	p := filepath.Join(dir, "sig.p7s")
	os.WriteFile(p, sig, 0o644)
	if out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", p, "-content", rh,
		"-certfile", cert, "-CAfile", cert, "-out", os.DevNull).CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
}

func TestLoadSignerRefusals(t *testing.T) {
	dir, key, cert := makeSigner(t)
	_, key2, _ := makeSigner(t)
	if _, err := LoadSigner(key2, cert); err == nil || !strings.Contains(err.Error(), "does not hold the public key") {
		t.Fatalf("mismatched key: %v", err)
	}
	ec := filepath.Join(dir, "ec.pem")
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := LoadSigner(ec, cert); err == nil || !strings.Contains(err.Error(), "use an RSA key") {
		t.Fatalf("ec key: %v", err)
	}
	if _, err := LoadSigner(cert, cert); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Fatalf("cert as key: %v", err)
	}
	if _, err := LoadSigner(key, key); err == nil {
		t.Fatal("key as certificate accepted")
	}
}

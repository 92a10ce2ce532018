package compose

// Detached PKCS#7 / CMS signatures over a dm-verity root hash, as
// `veritysetup open --root-hash-signature` and the kernel's
// root_hash_sig_key_desc expect them (drivers/md/dm-verity-verify-sig.c:
// verify_pkcs7_signature(root hash hex, ..., VERIFYING_UNSPECIFIED_SIGNATURE)).
//
// The message is what `openssl smime -sign -binary -noattr -nocerts -outform
// DER -md sha256` writes (the recipe of the kernel's verity documentation):
// ContentInfo(signedData){ version 1, digestAlgorithms {sha256}, encapContentInfo
// {id-data, detached}, no certificates, one SignerInfo { version 1,
// issuerAndSerialNumber of the certificate, sha256, rsaEncryption, RSA PKCS#1
// v1.5 signature over sha256(content) } }. No signed attributes: the kernel's
// pkcs7 verifier accepts that for VERIFYING_UNSPECIFIED_SIGNATURE (content type
// id-data), and without a signing time the output is deterministic. The
// signer is found in the kernel's trusted keyring by issuer and serial, so no
// certificate is embedded.
//
// Only RSA keys: PKCS#1 v1.5 signatures are deterministic, so the same key,
// certificate and root hash give the same bytes (ECDSA is randomised).

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
)

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type signerInfo struct {
	Version            int
	SID                issuerAndSerial
	DigestAlgorithm    algorithmIdentifier
	SignatureAlgorithm algorithmIdentifier
	Signature          []byte
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
}

type signedData struct {
	Version          int
	DigestAlgorithms []algorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	SignerInfos      []signerInfo `asn1:"set"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT SignedData, built by hand
}

// Signer signs verity root hashes with an RSA key and its certificate.
type Signer struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// LoadSigner reads a PEM private key (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA
// PRIVATE KEY") and a PEM (or DER) X.509 certificate whose public key it must
// match. Errors never hold key material.
func LoadSigner(keyPath, certPath string) (*Signer, error) {
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	var key any
	for rest := kb; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("signing key %s is encrypted; give an unencrypted PEM key", keyPath)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("signing key %s: not a valid %s", keyPath, blk.Type)
		}
		break
	}
	if key == nil {
		return nil, fmt.Errorf("signing key %s: no PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\" block", keyPath)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: %T is not supported; use an RSA key (PKCS#1 v1.5 signatures are deterministic)", keyPath, key)
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("signing key %s: RSA-%d is too small (want at least 2048 bits)", keyPath, rk.N.BitLen())
	}
	cert, err := LoadCert(certPath)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&rk.PublicKey) {
		return nil, fmt.Errorf("signing certificate %s does not hold the public key of %s", certPath, keyPath)
	}
	return &Signer{key: rk, cert: cert}, nil
}

// LoadCert reads a PEM or DER X.509 certificate.
func LoadCert(certPath string) (*x509.Certificate, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	der := cb
	if blk, _ := pem.Decode(cb); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("signing certificate %s: PEM block %q, want CERTIFICATE", certPath, blk.Type)
		}
		der = blk.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %v", certPath, err)
	}
	return cert, nil
}

// Cert returns the signer's certificate.
func (s *Signer) Cert() *x509.Certificate { return s.cert }

// Sign returns the DER CMS SignedData over content (detached).
func (s *Signer) Sign(content []byte) ([]byte, error) {
	d := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, d[:])
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	null := asn1.NullRawValue
	sha := algorithmIdentifier{Algorithm: oidSHA256, Parameters: null}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []algorithmIdentifier{sha},
		EncapContentInfo: encapContentInfo{EContentType: oidData},
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                issuerAndSerial{Issuer: asn1.RawValue{FullBytes: s.cert.RawIssuer}, Serial: s.cert.SerialNumber},
			DigestAlgorithm:    sha,
			SignatureAlgorithm: algorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: null},
			Signature:          sig,
		}},
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("encode SignedData: %w", err)
	}
	return asn1.Marshal(contentInfo{ContentType: oidSignedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
}

// VerifyRootHashSig checks a signature written by Sign against the content
// and a certificate (used by dm-compose verify; the independent checks are
// openssl cms -verify and the kernel).
func VerifyRootHashSig(sigDER, content []byte, cert *x509.Certificate) error {
	var ci contentInfo
	rest, err := asn1.Unmarshal(sigDER, &ci)
	if err != nil || len(rest) != 0 || !ci.ContentType.Equal(oidSignedData) || ci.Content.Class != asn1.ClassContextSpecific || ci.Content.Tag != 0 {
		return errors.New("signature: not a DER CMS ContentInfo(signedData)")
	}
	var sd signedData
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) != 0 {
		return fmt.Errorf("signature: SignedData: %v", err)
	}
	if !sd.EncapContentInfo.EContentType.Equal(oidData) || len(sd.SignerInfos) != 1 {
		return errors.New("signature: want detached id-data content and one signer")
	}
	si := sd.SignerInfos[0]
	if !si.DigestAlgorithm.Algorithm.Equal(oidSHA256) || !si.SignatureAlgorithm.Algorithm.Equal(oidRSAEncryption) {
		return errors.New("signature: want sha256 with rsaEncryption")
	}
	if !bytes.Equal(si.SID.Issuer.FullBytes, cert.RawIssuer) || si.SID.Serial.Cmp(cert.SerialNumber) != 0 {
		return errors.New("signature: signer is not the given certificate (issuer/serial differ)")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("signature: certificate key is not RSA")
	}
	d := sha256.Sum256(content)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], si.Signature); err != nil {
		return errors.New("signature: RSA signature does not match the root hash")
	}
	return nil
}

package tpmkey

import (
	"bytes"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// The key file format is the "ASN.1 Specification for TPM 2.0 Key Files"
// (draft-bottomley-tpm2-keys), also read by the OpenSSL tpm2 provider,
// tpm2-tss-engine and go-tpm-keyfiles:
//
//	TPMKey ::= SEQUENCE {
//	    type      OBJECT IDENTIFIER,          -- id-loadablekey
//	    emptyAuth [0] EXPLICIT BOOLEAN OPTIONAL,
//	    ...                                    -- policies: not written, refused
//	    parent    INTEGER,                     -- TPM_RH_OWNER
//	    pubkey    OCTET STRING,                -- TPM2B_PUBLIC
//	    privkey   OCTET STRING }               -- TPM2B_PRIVATE
//
// in a PEM block "TSS2 PRIVATE KEY".
//
// [draft-bottomley-tpm2-keys]: https://www.hansenpartnership.com/draft-bottomley-tpm2-keys.html
const pemType = "TSS2 PRIVATE KEY"

// oidLoadableKey is id-loadablekey, 2.23.133.10.1.3.
var oidLoadableKey = asn1.ObjectIdentifier{2, 23, 133, 10, 1, 3}

// maxKeyFile bounds a key file before it is parsed; ours are about 420
// bytes.
const maxKeyFile = 4096

type keyFile struct {
	Type      asn1.ObjectIdentifier
	EmptyAuth bool `asn1:"optional,explicit,tag:0"`
	Parent    int64
	Pubkey    []byte
	Privkey   []byte
}

// encodeKeyFile returns the PEM key file of a key made under the owner
// hierarchy's primary key.
func encodeKeyFile(pub tpm2.TPM2BPublic, priv tpm2.TPM2BPrivate) []byte {
	der, err := asn1.Marshal(keyFile{
		Type:      oidLoadableKey,
		EmptyAuth: true,
		Parent:    int64(tpm2.TPMRHOwner),
		Pubkey:    tpm2.Marshal(pub),
		Privkey:   tpm2.Marshal(priv),
	})
	if err != nil {
		panic("tpmkey: encoding a key file: " + err.Error()) // fixed types: cannot fail
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
}

// decodeKeyFile parses a key file and checks that it holds what this
// package makes: a P-256 ECDSA signing key generated inside a TPM, fixed to
// it and to its parent, the owner hierarchy's primary, with no password.
func decodeKeyFile(data []byte) (*tpm2.TPMTPublic, tpm2.TPM2BPublic, tpm2.TPM2BPrivate, error) {
	var none tpm2.TPM2BPublic
	if len(data) > maxKeyFile {
		return nil, none, tpm2.TPM2BPrivate{}, fmt.Errorf("key file is %d bytes, want at most %d", len(data), maxKeyFile)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != pemType || len(block.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, none, tpm2.TPM2BPrivate{}, errors.New("not a single PEM block " + pemType)
	}
	var kf keyFile
	if rest, err := asn1.Unmarshal(block.Bytes, &kf); err != nil || len(rest) != 0 {
		return nil, none, tpm2.TPM2BPrivate{}, fmt.Errorf("not a TPM 2.0 key file without policies (ASN.1: %v, %d trailing bytes)", err, len(rest))
	}
	switch {
	case !kf.Type.Equal(oidLoadableKey):
		return nil, none, tpm2.TPM2BPrivate{}, fmt.Errorf("key type %v, want loadable key %v", kf.Type, oidLoadableKey)
	case !kf.EmptyAuth:
		return nil, none, tpm2.TPM2BPrivate{}, errors.New("key has a password; this package makes keys without one")
	case kf.Parent != int64(tpm2.TPMRHOwner):
		return nil, none, tpm2.TPM2BPrivate{}, fmt.Errorf("parent %#x, want the owner hierarchy %#x", kf.Parent, uint32(tpm2.TPMRHOwner))
	}
	pub, err := unmarshalExact[tpm2.TPM2BPublic](kf.Pubkey)
	if err != nil {
		return nil, none, tpm2.TPM2BPrivate{}, fmt.Errorf("public part: %w", err)
	}
	priv, err := unmarshalExact[tpm2.TPM2BPrivate](kf.Privkey)
	if err != nil {
		return nil, none, tpm2.TPM2BPrivate{}, fmt.Errorf("private part: %w", err)
	}
	pt, err := pub.Contents()
	if err != nil {
		return nil, none, tpm2.TPM2BPrivate{}, fmt.Errorf("public part: %w", err)
	}
	if err := checkPublic(pt); err != nil {
		return nil, none, tpm2.TPM2BPrivate{}, err
	}
	return pt, *pub, *priv, nil
}

// unmarshalExact decodes a TPM structure that must fill data exactly.
func unmarshalExact[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](data []byte) (v *T, err error) {
	defer func() {
		// go-tpm's reflective decoder is not written for hostile input;
		// a stored entry must not crash the caller.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed TPM structure (%v)", r)
		}
	}()
	v, err = tpm2.Unmarshal[T, P](data)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(*v), data) {
		return nil, errors.New("trailing or non-canonical bytes")
	}
	return v, nil
}

// checkPublic checks a key's public area against keyTemplate. The TPM
// vouches for it on load: the private part's integrity covers the public
// area's name (TPM 2.0 Part 1 §27.7). FixedTPM with SensitiveDataOrigin
// means the TPM generated the key and will never let it out.
func checkPublic(p *tpm2.TPMTPublic) error {
	a := p.ObjectAttributes
	if p.Type != tpm2.TPMAlgECC || p.NameAlg != tpm2.TPMAlgSHA256 {
		return fmt.Errorf("key type %v with name algorithm %v, want ECC with SHA-256", p.Type, p.NameAlg)
	}
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.SignEncrypt || a.Decrypt || a.Restricted {
		return errors.New("key attributes are not those of a TPM-generated, non-exportable signing key")
	}
	ecc, err := p.Parameters.ECCDetail()
	if err != nil || ecc.CurveID != tpm2.TPMECCNistP256 {
		return errors.New("key is not on the P-256 curve")
	}
	return nil
}

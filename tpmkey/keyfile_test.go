package tpmkey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// syntheticKeyFile returns a key file as GenerateKey writes it, with a real
// P-256 point and a made-up private part, changed by edit: the parsing
// checks need no TPM.
func syntheticKeyFile(t testing.TB, edit func(*tpm2.TPMTPublic, *keyFile)) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt := keyTemplate
	pt.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: k.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: k.Y.FillBytes(make([]byte, 32))},
	})
	kf := keyFile{Type: oidLoadableKey, EmptyAuth: true, Parent: int64(tpm2.TPMRHOwner)}
	if edit != nil {
		edit(&pt, &kf)
	}
	kf.Pubkey = tpm2.Marshal(tpm2.New2B(pt))
	kf.Privkey = tpm2.Marshal(tpm2.TPM2BPrivate{Buffer: bytes.Repeat([]byte{7}, 126)})
	der, err := asn1.Marshal(kf)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
}

func TestDecodeKeyFile(t *testing.T) {
	good := syntheticKeyFile(t, nil)
	pt, _, _, err := decodeKeyFile(good)
	if err != nil {
		t.Fatalf("decodeKeyFile(a well-formed key file) = %v", err)
	}
	if _, err := publicKey(pt); err != nil {
		t.Fatalf("publicKey: %v", err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "PEM"},
		{"other PEM type", bytes.Replace(good, []byte(pemType), []byte("EC PRIVATE KEY"), 2), "PEM"},
		{"two blocks", append(append([]byte(nil), good...), good...), "PEM"},
		{"too large", bytes.Repeat([]byte{'A'}, maxKeyFile+1), "at most"},
		{"other OID", syntheticKeyFile(t, func(_ *tpm2.TPMTPublic, kf *keyFile) { kf.Type = asn1.ObjectIdentifier{2, 23, 133, 10, 1, 4} }), "key type"},
		{"password", syntheticKeyFile(t, func(_ *tpm2.TPMTPublic, kf *keyFile) { kf.EmptyAuth = false }), "password"},
		{"persistent parent", syntheticKeyFile(t, func(_ *tpm2.TPMTPublic, kf *keyFile) { kf.Parent = 0x81000001 }), "parent"},
		{"decrypt key", syntheticKeyFile(t, func(p *tpm2.TPMTPublic, _ *keyFile) { p.ObjectAttributes.Decrypt = true }), "attributes"},
		{"exportable", syntheticKeyFile(t, func(p *tpm2.TPMTPublic, _ *keyFile) { p.ObjectAttributes.FixedTPM = false }), "attributes"},
		{"imported", syntheticKeyFile(t, func(p *tpm2.TPMTPublic, _ *keyFile) { p.ObjectAttributes.SensitiveDataOrigin = false }), "attributes"},
		{"P-384", syntheticKeyFile(t, func(p *tpm2.TPMTPublic, _ *keyFile) {
			p.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{CurveID: tpm2.TPMECCNistP384})
		}), "P-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := decodeKeyFile(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeKeyFile = %v; want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestPublicKeyOffCurve(t *testing.T) {
	pt := keyTemplate
	pt.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: []byte{1}},
		Y: tpm2.TPM2BECCParameter{Buffer: []byte{2}},
	})
	if _, err := publicKey(&pt); err == nil {
		t.Error("publicKey((1, 2)) = nil error; want an error: the point is not on P-256")
	}
}

func TestReadResponse(t *testing.T) {
	rsp := func(size uint32, n int) []byte {
		b := make([]byte, n)
		b[0], b[1] = 0x80, 0x01
		b[2], b[3], b[4], b[5] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantLen int // -1: an error
	}{
		{"header only", rsp(10, 10), 10},
		{"with body", rsp(30, 30), 30},
		{"short header", rsp(10, 6), -1},
		{"size below header", rsp(4, 10), -1},
		{"size too large", rsp(maxResponse+1, 10), -1},
		{"truncated body", rsp(30, 20), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A one-byte reader splits the response as a stream may.
			got, err := readResponse(io.LimitReader(oneByte{bytes.NewReader(tt.in)}, 1<<20))
			if tt.wantLen < 0 {
				if err == nil {
					t.Errorf("readResponse = %d bytes, nil error; want an error", len(got))
				}
				return
			}
			if err != nil || len(got) != tt.wantLen {
				t.Errorf("readResponse = %d bytes, %v; want %d bytes", len(got), err, tt.wantLen)
			}
		})
	}
}

type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

// FuzzDecodeKeyFile feeds stored entries, which are untrusted, to the
// parser: it must return an error or a checked key, never panic.
func FuzzDecodeKeyFile(f *testing.F) {
	good := syntheticKeyFile(f, nil)
	f.Add(good)
	block, _ := pem.Decode(good)
	f.Add(block.Bytes)
	f.Add([]byte("-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// As stored, and wrapped in PEM to reach the ASN.1 and TPM parsers.
		for _, in := range [][]byte{data, pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: data})} {
			if pt, _, _, err := decodeKeyFile(in); err == nil {
				publicKey(pt) // may refuse the point; must not panic
			}
		}
	})
}

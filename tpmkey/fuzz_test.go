package tpmkey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// FuzzTPMAnswers gives GenerateKey, Sign and ParseKey a device whose
// answers are the fuzzer's: whatever a fake TPM or a rewritten bus says,
// they return an error or a key that passed the checks, and never panic.
// The seed is a consistent set of answers, built here, that passes them.
func FuzzTPMAnswers(f *testing.F) {
	f.Add(joinAnswers(seedAnswers(f)))
	// A primary key of another type than asked for: comparing it with the
	// template once panicked on the unique fields' union.
	answers := seedAnswers(f)
	binary.BigEndian.PutUint16(answers[0][20:22], uint16(tpm2.TPMAlgSymCipher))
	f.Add(joinAnswers(answers))
	keyFile := syntheticKeyFile(f, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		tpm := newTPM(&scriptedConn{answers: splitAnswers(data)}, "fuzz")
		tpm.Timeout = time.Millisecond // no retries worth waiting for
		d := sha256.Sum256(nil)
		if k, err := GenerateKey(tpm); err == nil {
			k.Sign(nil, d[:], crypto.SHA256)
			k.Close()
		}
		if k, err := ParseKey(tpm, keyFile); err == nil {
			k.Sign(nil, d[:], crypto.SHA256)
			k.Close()
		}
	})
}

// TestSeedAnswers: the seed of FuzzTPMAnswers passes every check, so that
// the fuzzer starts beyond them.
func TestSeedAnswers(t *testing.T) {
	tpm := newTPM(&scriptedConn{answers: seedAnswers(t)}, "seed")
	k, err := GenerateKey(tpm)
	if err != nil {
		t.Fatalf("GenerateKey with the seed's answers: %v", err)
	}
	d := sha256.Sum256(nil)
	if _, err := k.Sign(nil, d[:], crypto.SHA256); err != nil {
		t.Errorf("Sign with the seed's answer: %v", err)
	}
}

// scriptedConn answers each command with the next of its answers.
type scriptedConn struct{ answers [][]byte }

func (c *scriptedConn) Send([]byte) ([]byte, error) {
	if len(c.answers) == 0 {
		return nil, errors.New("no more answers")
	}
	a := c.answers[0]
	c.answers = c.answers[1:]
	return a, nil
}

func (c *scriptedConn) Close() error { return nil }

// joinAnswers and splitAnswers turn answers into one input and back: each
// answer prefixed by its length in two bytes.
func joinAnswers(answers [][]byte) []byte {
	var b []byte
	for _, a := range answers {
		b = binary.BigEndian.AppendUint16(b, uint16(len(a)))
		b = append(b, a...)
	}
	return b
}

func splitAnswers(b []byte) [][]byte {
	var answers [][]byte
	for len(b) >= 2 {
		n := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
		answers = append(answers, b[2:2+n])
		b = b[2+n:]
	}
	return answers
}

// seedAnswers returns what a TPM answers to GenerateKey (CreatePrimary,
// Create, Load, ReadPublic, FlushContext of the primary) and to one Sign.
func seedAnswers(t testing.TB) [][]byte {
	t.Helper()
	point := func() tpm2.TPMUPublicID {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: k.X.FillBytes(make([]byte, 32))},
			Y: tpm2.TPM2BECCParameter{Buffer: k.Y.FillBytes(make([]byte, 32))},
		})
	}
	name := func(p tpm2.TPMTPublic) tpm2.TPM2BName {
		n, err := tpm2.ObjectName(&p)
		if err != nil {
			t.Fatal(err)
		}
		return *n
	}
	primary, key := primaryTemplate, keyTemplate
	primary.Unique, key.Unique = point(), point()
	ticket := tpm2.TPMTTKCreation{Tag: tpm2.TPMSTCreation, Hierarchy: tpm2.TPMRHOwner}
	empty := tpm2.TPM2BDigest{} // also an empty TPM2B_CREATION_DATA
	sig := tpm2.TPMTSignature{
		SigAlg: tpm2.TPMAlgECDSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       tpm2.TPMAlgSHA256,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: bytes.Repeat([]byte{1}, 32)},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: bytes.Repeat([]byte{2}, 32)},
		}),
	}
	const primaryHandle, keyHandle = 0x80000000, 0x80000001
	return [][]byte{
		answer(true, []uint32{primaryHandle}, tpm2.New2B(primary), empty, empty, ticket, name(primary)),
		answer(true, nil, tpm2.TPM2BPrivate{Buffer: bytes.Repeat([]byte{7}, 126)}, tpm2.New2B(key), empty, empty, ticket),
		answer(true, []uint32{keyHandle}, name(key)),
		answer(false, nil, tpm2.New2B(key), name(key), name(key)),
		answer(false, nil),
		answer(true, nil, sig),
	}
}

// answer encodes a successful TPM response (TPM 2.0 Part 1 §18): header,
// handles, then the parameters, with a parameter size and one password
// session's answer when the command had sessions.
func answer(sessions bool, handles []uint32, params ...tpm2.Marshallable) []byte {
	var p []byte
	for _, v := range params {
		p = append(p, tpm2.Marshal(v)...)
	}
	b := make([]byte, headerSize)
	for _, h := range handles {
		b = binary.BigEndian.AppendUint32(b, h)
	}
	tag := tpm2.TPMSTNoSessions
	if sessions {
		tag = tpm2.TPMSTSessions
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		p = append(p, 0, 0, 1, 0, 0) // nonce, continueSession, hmac
	}
	b = append(b, p...)
	binary.BigEndian.PutUint16(b[0:2], uint16(tag))
	binary.BigEndian.PutUint32(b[2:6], uint32(len(b)))
	return b
}

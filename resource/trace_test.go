package resource

import (
	"context"
	"testing"
	"time"
)

func TestTrace(t *testing.T) {
	var verified []VerifiedInfo
	var refused []RefusedInfo
	var replayed []ReplayInfo
	var challenged []NonceChallengeInfo
	var offsets []time.Duration
	tr := &Trace{
		Verified:        func(i VerifiedInfo) { verified = append(verified, i) },
		Refused:         func(i RefusedInfo) { refused = append(refused, i) },
		Replayed:        func(i ReplayInfo) { replayed = append(replayed, i) },
		NonceChallenged: func(i NonceChallengeInfo) { challenged = append(challenged, i) },
		IATOffset:       func(i IATOffsetInfo) { offsets = append(offsets, i.Offset) },
	}
	n := newIssuer(t, testKeyBytes(3), time.Minute)
	s := newSetup(t, "EdDSA", func(c *Config) { c.Trace = JoinTraces(nil, tr, &Trace{}); c.Nonces = n })
	ctx := context.WithValue(context.Background(), markerKey{}, "marker")

	c := claims(s.token)
	c["nonce"] = n.at(testNow).current
	c["iat"] = testNow.Add(-3 * time.Second).Unix()
	p := s.key.proof(t, s.key.header(), c)
	if _, err := s.v.Check(s.request(p).WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	s.v.Check(s.request(p).WithContext(ctx)) // replay
	c = claims(s.token)
	c["nonce"] = "stale"
	s.v.Check(s.request(s.key.proof(t, s.key.header(), c)).WithContext(ctx))
	s.v.Check(s.request("").WithContext(ctx))

	if len(verified) != 1 || verified[0].Alg != "EdDSA" || verified[0].JKT != s.key.jkt || !verified[0].Nonce ||
		verified[0].Scheme != "DPoP" || verified[0].Context != ctx {
		t.Errorf("Verified = %+v", verified)
	}
	wantReasons := []Reason{ReasonReplay, ReasonNonce, ReasonMissingProof}
	if len(refused) != len(wantReasons) {
		t.Fatalf("Refused %d times; want %d", len(refused), len(wantReasons))
	}
	for i, r := range refused {
		if r.Reason != wantReasons[i] || r.Err == nil || r.Context != ctx {
			t.Errorf("Refused #%d = %+v; want %s", i, r, wantReasons[i])
		}
	}
	if len(replayed) != 1 || replayed[0].JKT != s.key.jkt {
		t.Errorf("Replayed = %+v; want once for %s", replayed, s.key.jkt)
	}
	if len(challenged) != 1 || !challenged[0].Stale {
		t.Errorf("NonceChallenged = %+v; want once, stale", challenged)
	}
	if len(offsets) != 3 || offsets[0] != -3*time.Second {
		t.Errorf("IATOffset = %v; want 3 offsets, the first -3s", offsets)
	}
}

// markerKey marks a request's context, to see it handed to the callbacks.
type markerKey struct{}

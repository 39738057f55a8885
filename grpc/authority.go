package dpopgrpc

import (
	"context"
	"sync"
	"time"
)

// maxAuthorities bounds the authorities one [Credentials] remembers, as
// the dpop package's NonceCache bounds its origins; when full, the one
// written longest ago is dropped.
const maxAuthorities = 256

// maxProbeWait bounds how long an RPC to an authority whose nonce is not
// known waits for the first RPC to it, as the dpop Transport does: long
// enough for a challenge to come back, short enough that a slow first RPC
// does not hold the others for long.
const maxProbeWait = time.Second

// probeWait is maxProbeWait; tests that count challenges raise it.
var probeWait = maxProbeWait

// authorityTable is what Credentials know of each server authority: its
// current DPoP nonce (RFC 9449 §9) and how far its clock is from ours
// (§11.1). Its zero value is empty and ready to use.
type authorityTable struct {
	mu     sync.Mutex               // guards the fields below
	m      map[string]authorityInfo // by authority
	seq    uint64                   // of the newest write
	probes map[string]chan struct{} // authorities whose first RPC is under way; closed when it has its answer
}

// authorityInfo is what is known of one authority.
type authorityInfo struct {
	nonce  string        // the current nonce, or "" when it sent none
	offset time.Duration // its clock minus ours, when learned; else 0
	seq    uint64        // when it was written, to drop the oldest
}

// lookup returns what is known of authority, and whether anything is.
func (t *authorityTable) lookup(authority string) (authorityInfo, bool) {
	t.mu.Lock()
	e, ok := t.m[authority]
	t.mu.Unlock()
	return e, ok
}

// await returns what is known of authority for the next attempt of cl
// (nil for an RPC made without the interceptors), whose authority it is. While
// nothing is known, the first RPC made through an interceptor goes on and
// becomes the probe; the others wait for its answer (no longer than ctx
// and maxProbeWait) instead of each paying a nonce challenge.
func (t *authorityTable) await(ctx context.Context, authority string, cl *call) (authorityInfo, error) {
	t.mu.Lock()
	e, known := t.m[authority]
	if known || cl == nil || cl.probe != nil {
		t.mu.Unlock()
		return e, nil
	}
	wait, probing := t.probes[authority]
	if !probing {
		if cl.stream {
			t.mu.Unlock() // a stream never holds others up: its answer may be far away
			return e, nil
		}
		if t.probes == nil {
			t.probes = make(map[string]chan struct{})
		}
		cl.probe = make(chan struct{})
		t.probes[authority] = cl.probe
		t.mu.Unlock()
		return e, nil
	}
	t.mu.Unlock()
	timer := time.NewTimer(probeWait)
	defer timer.Stop()
	select {
	case <-wait:
	case <-timer.C:
	case <-ctx.Done():
		return e, ctx.Err()
	}
	e, _ = t.lookup(authority)
	return e, nil
}

// endProbe ends cl's turn as the first RPC to its authority, if it had
// it: the authority becomes known (with the nonce learned, if any), and
// the RPCs waiting go on.
func (t *authorityTable) endProbe(cl *call) {
	if cl.probe == nil {
		return
	}
	t.mu.Lock()
	if t.probes[cl.authority] == cl.probe {
		delete(t.probes, cl.authority)
	}
	if _, known := t.m[cl.authority]; !known {
		t.write(cl.authority, authorityInfo{})
	}
	t.mu.Unlock()
	close(cl.probe)
	cl.probe = nil
}

// setNonce stores nonce, already checked, as authority's current nonce.
func (t *authorityTable) setNonce(authority, nonce string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[authority]
	if ok && e.nonce == nonce {
		return
	}
	e.nonce = nonce
	t.write(authority, e)
}

// setOffset stores authority's clock offset.
func (t *authorityTable) setOffset(authority string, offset time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[authority]
	e.offset = offset
	t.write(authority, e)
}

// write stores e for authority, dropping the oldest authority when the
// table is full. t.mu must be held.
func (t *authorityTable) write(authority string, e authorityInfo) {
	if t.m == nil {
		t.m = make(map[string]authorityInfo)
	}
	if _, ok := t.m[authority]; !ok && len(t.m) >= maxAuthorities {
		var oldest string
		seq := ^uint64(0)
		for k, v := range t.m {
			if v.seq < seq {
				oldest, seq = k, v.seq
			}
		}
		delete(t.m, oldest)
	}
	t.seq++
	e.seq = t.seq
	t.m[authority] = e
}

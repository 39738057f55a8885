package dpopgrpc

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The table keeps at most maxAuthorities, dropping the one written longest
// ago.
func TestAuthorityTableBound(t *testing.T) {
	var tab authorityTable
	for i := range maxAuthorities + 10 {
		tab.setNonce(fmt.Sprintf("host-%d:443", i), "n")
	}
	if n := len(tab.m); n != maxAuthorities {
		t.Errorf("%d authorities kept; want %d", n, maxAuthorities)
	}
	for i := range 10 {
		if _, ok := tab.lookup(fmt.Sprintf("host-%d:443", i)); ok {
			t.Errorf("host-%d, among the oldest, is still there", i)
		}
	}
	if _, ok := tab.lookup(fmt.Sprintf("host-%d:443", maxAuthorities+9)); !ok {
		t.Error("the newest authority was dropped")
	}
}

// The first unary RPC to an unknown authority goes on; the next ones wait
// for its end, no longer than their context; a stream never makes others
// wait.
func TestAuthorityTableProbe(t *testing.T) {
	var tab authorityTable
	ctx := context.Background()
	first := &call{authority: "a"}
	if _, err := tab.await(ctx, "a", first); err != nil || first.probe == nil {
		t.Fatalf("first RPC: err %v, probe %v; want nil and a probe", err, first.probe)
	}

	stream := &call{authority: "b", stream: true}
	if _, err := tab.await(ctx, "b", stream); err != nil || stream.probe != nil || len(tab.probes) != 1 {
		t.Fatalf("stream: err %v, probe %v, %d probes; want no probe of its own", err, stream.probe, len(tab.probes))
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tab.await(cancelled, "a", &call{authority: "a"}); err != context.Canceled {
		t.Errorf("await with a cancelled context while probing: %v; want context.Canceled", err)
	}

	done := make(chan authorityInfo)
	go func() {
		e, _ := tab.await(ctx, "a", &call{authority: "a"})
		done <- e
	}()
	tab.setNonce("a", "n-1")
	tab.endProbe(first)
	select {
	case e := <-done:
		if e.nonce != "n-1" {
			t.Errorf("waiter got nonce %q; want the probe's n-1", e.nonce)
		}
	case <-time.After(time.Minute):
		t.Fatal("waiter not released")
	}
	if first.probe != nil || len(tab.probes) != 0 {
		t.Errorf("probe left behind: %v, %v", first.probe, tab.probes)
	}
	tab.endProbe(first) // a second end is a no-op
}

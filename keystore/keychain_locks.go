package keystore

import (
	"fmt"
	"sync"
	"time"
)

// entryKey names one entry of one backend.
type entryKey struct {
	backend       backend
	service, name string
}

// writeLocks orders the writes to each keychain entry within the process;
// see [Keychain.lockEntry].
var writeLocks struct {
	mu sync.Mutex // guards m and every refs
	m  map[entryKey]*writeLock
}

// writeLock is held by the write to one entry that runs now.
type writeLock struct {
	held chan struct{} // full while a write runs; waiters queue to send
	refs int           // writes holding or waiting for the lock
}

// lockEntry waits, until deadline at most, for the earlier writes to entry
// name to finish, and returns the function that lets the next one go. The
// caller must call it when its own backend call returns, not when it gives
// up waiting for it. Waiters are let go in the order they came (a channel's
// send queue is FIFO).
func (k *Keychain) lockEntry(name string, deadline time.Time) (unlock func(), err error) {
	key := entryKey{k.backendOrOS(), k.Service, name}
	writeLocks.mu.Lock()
	l := writeLocks.m[key]
	if l == nil {
		if writeLocks.m == nil {
			writeLocks.m = make(map[entryKey]*writeLock)
		}
		l = &writeLock{held: make(chan struct{}, 1)}
		writeLocks.m[key] = l
	}
	l.refs++
	writeLocks.mu.Unlock()
	drop := func() {
		writeLocks.mu.Lock()
		defer writeLocks.mu.Unlock()
		if l.refs--; l.refs == 0 {
			delete(writeLocks.m, key)
		}
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case l.held <- struct{}{}:
		return func() {
			<-l.held
			drop()
		}, nil
	case <-t.C:
		drop()
		return nil, fmt.Errorf("%w: an earlier write to entry %q (service %q) that the keychain has not answered is still pending after %v: "+
			"is the keychain locked? unlock it (log in to the desktop session, or run gnome-keyring-daemon --unlock), raise Keychain.Timeout, or use a FileStore",
			ErrKeychainUnavailable, name, k.Service, k.timeout())
	}
}

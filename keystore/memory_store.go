package keystore

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
)

// MemoryStore is a [Store] that keeps entries in memory, for tests and for
// processes that need no persistence. Its zero value is an empty store ready
// to use; it is safe for concurrent use and must not be copied after first
// use.
//
// Printing a MemoryStore, as a value or a pointer, with any verb of package
// fmt or any slog handler, shows the number of entries at most, never their
// names or data; encoding/json shows nothing of it.
type MemoryStore struct {
	// state is reached through the unsafe.Pointer inside atomic.Pointer,
	// which fmt's reflection never follows, so that printing a MemoryStore
	// value (which has no Format method) shows no data under any verb.
	state atomic.Pointer[memoryState]
}

// memoryState is what a MemoryStore holds.
type memoryState struct {
	mu sync.Mutex // guards m
	m  map[string][]byte
}

var (
	_ Store          = (*MemoryStore)(nil)
	_ slog.LogValuer = (*MemoryStore)(nil)
)

// load returns s's state, made on first use.
func (s *MemoryStore) load() (*memoryState, error) {
	if s == nil {
		return nil, errors.New("keystore: the MemoryStore is nil")
	}
	if st := s.state.Load(); st != nil {
		return st, nil
	}
	s.state.CompareAndSwap(nil, &memoryState{m: make(map[string][]byte)})
	return s.state.Load(), nil
}

// Get implements [Store].
func (s *MemoryStore) Get(name string) ([]byte, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	if err := validateName(name); err != nil {
		return nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	data, ok := st.m[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return slices.Clone(data), nil
}

// Create implements [Store].
func (s *MemoryStore) Create(name string, data []byte) error {
	return s.set(name, data, false)
}

// Put implements [Store].
func (s *MemoryStore) Put(name string, data []byte) error {
	return s.set(name, data, true)
}

func (s *MemoryStore) set(name string, data []byte, overwrite bool) error {
	st, err := s.load()
	if err != nil {
		return err
	}
	if err := validateName(name); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.m[name]; ok && !overwrite {
		return fmt.Errorf("%w: %q", ErrExist, name)
	}
	st.m[name] = slices.Clone(data)
	return nil
}

// Delete implements [Store].
func (s *MemoryStore) Delete(name string) error {
	st, err := s.load()
	if err != nil {
		return err
	}
	if err := validateName(name); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.m[name]; !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	delete(st.m, name)
	return nil
}

// len returns the number of entries.
func (s *MemoryStore) len() int {
	st := s.state.Load()
	if st == nil {
		return 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.m)
}

// Format implements [fmt.Formatter]: every verb prints the number of
// entries and nothing of their names or data, which hold keys and tokens.
func (s *MemoryStore) Format(f fmt.State, verb rune) {
	if s == nil {
		fmt.Fprint(f, "(*keystore.MemoryStore)(nil)")
		return
	}
	fmt.Fprintf(f, "&keystore.MemoryStore{%d entries}", s.len())
}

// LogValue implements [slog.LogValuer]: a group holding the number of
// entries, as Format prints.
func (s *MemoryStore) LogValue() slog.Value {
	if s == nil {
		return slog.AnyValue(nil)
	}
	return slog.GroupValue(slog.Int("entries", s.len()))
}

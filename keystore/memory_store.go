package keystore

import (
	"fmt"
	"slices"
	"sync"
)

// MemoryStore is a [Store] that keeps entries in memory, for tests and for
// processes that need no persistence. Its zero value is an empty store ready
// to use; it is safe for concurrent use and must not be copied after first
// use.
//
// Printing a MemoryStore (with any verb of package fmt) shows the number of
// entries, never their names or data.
type MemoryStore struct {
	mu sync.Mutex         // guards m
	m  map[string]*[]byte // lazily made; pointers, so that fmt's reflection shows no data
}

var _ Store = (*MemoryStore)(nil)

// Get implements [Store].
func (s *MemoryStore) Get(name string) ([]byte, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.m[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return slices.Clone(*data), nil
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
	if err := validateName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[name]; ok && !overwrite {
		return fmt.Errorf("%w: %q", ErrExist, name)
	}
	if s.m == nil {
		s.m = make(map[string]*[]byte)
	}
	data = slices.Clone(data)
	s.m[name] = &data
	return nil
}

// Delete implements [Store].
func (s *MemoryStore) Delete(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[name]; !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	delete(s.m, name)
	return nil
}

// Format implements [fmt.Formatter]: every verb prints the number of
// entries and nothing of their names or data, which hold keys and tokens.
func (s *MemoryStore) Format(f fmt.State, verb rune) {
	s.mu.Lock()
	n := len(s.m)
	s.mu.Unlock()
	fmt.Fprintf(f, "&keystore.MemoryStore{%d entries}", n)
}

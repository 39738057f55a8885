package keystore

import (
	"errors"
	"fmt"

	"github.com/zalando/go-keyring"
)

// explain maps go-keyring's errors onto this package's.
func (k *Keychain) explain(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrExist), errors.Is(err, errRaced):
		return err
	case errors.Is(err, keyring.ErrNotFound):
		return fmt.Errorf("%w: %q in keychain service %q", ErrNotFound, name, k.Service)
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return fmt.Errorf("keystore: the keychain refused entry %q as too large (use a FileStore): %w", name, foreignError{err})
	case errors.Is(err, keyring.ErrUnsupportedPlatform):
		return fmt.Errorf("%w: no keychain support in go-keyring: use a FileStore: %w", ErrUnsupportedPlatform, foreignError{err})
	}
	return explainPlatform(name, err)
}

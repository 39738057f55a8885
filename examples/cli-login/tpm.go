package main

import (
	"crypto"
	"errors"
	"fmt"
	"slices"

	"github.com/dpopkit/dpop/keystore"
	"github.com/dpopkit/dpop/tpmkey"
)

// loadTPMKey opens the TPM at o.tpm and loads the key stored under keyName
// in store, or creates it there: the private key stays in the TPM, the
// store keeps only its TPM-wrapped blob. close releases the key and the
// TPM; the caller calls it when the session ends.
func loadTPMKey(o *options, store keystore.Store, keyName string, supported []string) (key crypto.Signer, close func(), err error) {
	if !slices.Contains(supported, "ES256") {
		return nil, nil, fmt.Errorf("cli-login: -store tpm makes ES256 keys, which the server does not accept (it takes %q); use -store keychain or -store file", supported)
	}
	var tpm *tpmkey.TPM
	if o.tpm == tpmkey.SystemPath {
		tpm, err = tpmkey.OpenSystem()
	} else {
		tpm, err = tpmkey.Open(o.tpm)
	}
	if errors.Is(err, tpmkey.ErrNoTPM) {
		return nil, nil, fmt.Errorf("cli-login: -store tpm: no TPM available; use -store keychain or -store file, or point -tpm at a TPM device or simulator socket: %w", err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cli-login: -store tpm: %w", err)
	}
	k, err := tpmkey.LoadOrCreate(tpm, store, keyName)
	if err != nil {
		tpm.Close()
		var fe *tpmkey.ForeignKeyError
		if errors.As(err, &fe) {
			return nil, nil, fmt.Errorf("cli-login: the stored TPM key belongs to another TPM (or this one was cleared); run \"cli-login -store tpm logout\" to make a new one and log in again: %w", err)
		}
		return nil, nil, fmt.Errorf("cli-login: key in the TPM: %w", err)
	}
	return k, func() { k.Close(); tpm.Close() }, nil
}

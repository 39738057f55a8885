package keystore_test

import (
	"crypto/ecdsa"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dpopkit/dpop/keystore"
)

func ExampleLoadOrCreate() {
	dir, err := os.MkdirTemp("", "keystore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A CLI would use &keystore.Keychain{Service: "com.example.mycli"};
	// a server or container a FileStore.
	store := &keystore.FileStore{Dir: filepath.Join(dir, "keys")}

	// The first run creates the key, later runs load the same one.
	first, err := keystore.LoadOrCreate(store, "dpop-key", nil)
	if err != nil {
		log.Fatal(err)
	}
	again, err := keystore.LoadOrCreate(store, "dpop-key", nil)
	if err != nil {
		log.Fatal(err)
	}
	ec := first.(*ecdsa.PrivateKey)
	fmt.Println("curve:", ec.Curve.Params().Name)
	fmt.Println("same key:", ec.Equal(again))
	// Output:
	// curve: P-256
	// same key: true
}

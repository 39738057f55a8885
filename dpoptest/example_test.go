package dpoptest_test

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/dpopkit/dpop/dpoptest"
)

// Example starts a server that demands nonces and reads its authorization
// server metadata (RFC 8414, RFC 9449 §5.1).
func Example() {
	srv := dpoptest.NewServer(&dpoptest.Config{
		RequireNonce: true,
		Algs:         []string{"ES256", "EdDSA"},
	})
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var md struct {
		Algs  []string `json:"dpop_signing_alg_values_supported"`
		Token string   `json:"token_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(md.Algs)
	fmt.Println(md.Token == srv.Endpoint().TokenURL)

	// Without DPoP credentials the resource server answers a challenge.
	resp, err = http.Get(srv.URL + "/api/hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	// Output:
	// [ES256 EdDSA]
	// true
	// 401 DPoP algs="ES256 EdDSA"
}

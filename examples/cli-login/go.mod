module github.com/dpopkit/dpop/examples/cli-login

go 1.26.0

require (
	github.com/cli/browser v1.3.0
	github.com/dpopkit/dpop v0.1.0
	github.com/dpopkit/dpop/tpmkey v0.1.0
	golang.org/x/oauth2 v0.38.0
)

require (
	github.com/danieljoos/wincred v1.2.3 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/godbus/dbus/v5 v5.2.2 // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/zalando/go-keyring v0.2.8 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)

module github.com/dpopkit/dpop/pkcs11key

go 1.26.0

require (
	github.com/ThalesGroup/crypto11 v1.6.2
	github.com/dpopkit/dpop v0.1.0
	github.com/miekg/pkcs11 v1.1.2
)

require (
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/thales-e-security/pool v0.0.2 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)

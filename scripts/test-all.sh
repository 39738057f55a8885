#!/usr/bin/env bash
# test-all.sh runs every test of the module with its real parts, and never
# skips them: the keychain tests against a throwaway gnome-keyring Secret
# Service (scripts/with-keychain.sh, which apt-get installs dbus and
# gnome-keyring when missing), the interop tests against panva's
# oidc-provider and a jose resource server on 127.0.0.1 (interop/run.sh,
# which runs npm ci from the committed lock file), the Redis replay store
# against a throwaway redis-server (scripts/with-redis.sh), the gRPC module
# against grpc-go servers in-process. DPOP_FULL_TEST=1 turns
# every "real part missing" skip into a failure.
#
# Usage: scripts/test-all.sh            (from anywhere in the checkout)
#        FUZZTIME=30s scripts/test-all.sh   (longer fuzzing; default 3s a target)
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in go node npm; do
	command -v "$tool" >/dev/null || { echo "test-all: $tool is not installed" >&2; exit 1; }
done
export DPOP_FULL_TEST=1

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './interop/node_modules/*'))
if [ -n "$unformatted" ]; then
	echo "test-all: gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "== go test -race: every package, with a Secret Service and the interop servers"
interop/run.sh scripts/with-keychain.sh go test -race -count=1 -timeout 30m ./...

echo "== allocation budgets (exact only without -race)"
go test -count=1 -run 'Allocs' ./...

echo "== fuzz targets, ${FUZZTIME:-3s} each"
# fuzz_target PKG TARGET fuzzes TARGET of PKG (from the current directory)
# for FUZZTIME. A failure that writes an input to testdata/fuzz is a real
# one and ends the run; one that writes none (the fuzzing engine itself
# failing, as it may on a loaded machine) gets one more try. Either way the
# fuzzer's last lines are shown.
fuzz_target() {
	local log try
	log=$(mktemp)
	for try in 1 2; do
		if go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-3s}" "$1" >"$log" 2>&1; then
			echo "ok  	$1 $2"
			rm -f "$log"
			return 0
		fi
		echo "test-all: fuzzing $2 in $1 failed (try $try of 2):" >&2
		tail -n 25 "$log" >&2
		grep -q 'Failing input written to' "$log" && break
	done
	rm -f "$log"
	exit 1
}
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		fuzz_target "$pkg" "$target"
	done
done

echo "== benchmarks compile and run (1 iteration; figures: see BENCHMARKS.md)"
go test -run '^$' -bench . -benchtime 1x ./... >/dev/null
# --- OpenTelemetry: the otel module, a module of its own (go vet/test ./...
# of the root module do not enter it, in the workspace of go.work either;
# from its directory they build it against this checkout's core); real
# SDK, no external collector ---
echo "== otel: vet, go test -race, benchmarks once"
(
	cd otel
	go vet ./...
	go test -race -count=1 -timeout 10m ./...
	go test -run '^$' -bench . -benchtime 1x ./... >/dev/null
)
# --- end of otel ---
# --- gRPC: the grpc module (package dpopgrpc), a module of its own (go
# vet/test ./... of the root module do not enter it); its grpc-go and
# connect-go servers run in-process on 127.0.0.1, so nothing is skipped ---
echo "== grpc: vet, go test -race, fuzz, benchmarks once"
(
	cd grpc
	go vet ./...
	go test -race -count=1 -timeout 10m ./...
	for target in $(go test -list '^Fuzz' . | grep '^Fuzz' || true); do
		fuzz_target "$(go list .)" "$target"
	done
	go test -run '^$' -bench . -benchtime 1x ./... >/dev/null
)
# --- end of grpc ---
# --- Redis: the redisstore module, a module of its own, against a throwaway
# redis-server on 127.0.0.1 without persistence (scripts/with-redis.sh, which
# apt-get installs it when missing); its tests also start servers of their
# own, to stop, freeze and restart under a Store ---
echo "== redisstore: vet, go test -race (redis-server), fuzz, benchmarks once"
(
	cd redisstore
	go vet ./...
	../scripts/with-redis.sh go test -race -count=1 -timeout 10m ./...
	for target in $(go test -list '^Fuzz' . | grep '^Fuzz' || true); do
		fuzz_target "$(go list .)" "$target"
	done
	../scripts/with-redis.sh go test -run '^$' -bench . -benchtime 1x ./... >/dev/null
)
# --- end of redisstore ---
# --- examples/api: the runnable resource server, a module of its own (it
# needs go-redis). Its tests start it against a dpoptest issuer, and two
# instances on one throwaway redis-server (and on Redis servers of their own,
# stopped and restarted). Its interop tests (oidc-provider, oauth4webapi, the
# FAPI 2.0 negative tests) are in ./interop, run above under interop/run.sh:
# they build this module with go build in its directory. ---
echo "== examples/api: vet, go test -race (redis-server)"
(
	cd examples/api
	go vet ./...
	../../scripts/with-redis.sh go test -race -count=1 -timeout 10m ./...
)
# --- end of examples/api ---
# --- Hardware keys: the tpmkey and pkcs11key modules, and examples/cli-login
# (-store tpm), each a module of its own ---
# Run under two throwaway swtpm TPMs and a softhsm2 token (both scripts
# apt-get install what is missing). go vet/test ./... of the root module do
# not enter these directories.
echo "== tpmkey, pkcs11key, examples/cli-login: vet, go test -race (swtpm, softhsm2), fuzz, benchmarks once"
hw_module() { # dir
	(
		cd "$1"
		go vet ./...
		go test -race -count=1 -timeout 10m ./...
		for target in $(go test -list '^Fuzz' . | grep '^Fuzz' || true); do
			fuzz_target "$(go list .)" "$target"
		done
		go test -run '^$' -bench . -benchtime 1x ./... >/dev/null
	)
}
# The TPM's Windows path (TPM Base Services) is built and vetted, not run.
(cd tpmkey && GOOS=windows go vet ./...)
(cd examples/cli-login && GOOS=windows go build -o /dev/null .)
scripts/with-swtpm.sh scripts/with-softhsm.sh \
	bash -c "set -euo pipefail; $(declare -f fuzz_target hw_module); hw_module tpmkey; hw_module pkcs11key; hw_module examples/cli-login"
# --- end of hardware keys ---
# --- Modules as users get them: go.work agrees with the go.mod files, and
# every module installs with a plain go get from a local module source (a
# git repository on disk, tagged by scripts/release.sh in a copy), with no
# network. See scripts/test-install.sh. ---
echo "== modules: go.work agrees with the go.mod files; each module installs with go get (local module source)"
scripts/test-install.sh
# --- end of modules ---
echo "test-all: all passed"

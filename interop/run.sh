#!/usr/bin/env bash
# Usage: interop/run.sh <command...>
#
# Starts the interop servers on 127.0.0.1 (free ports), runs <command> with
#   DPOP_INTEROP_ISSUER                 AS issuer URL (oidc-provider)
#   DPOP_INTEROP_RS                     RS base URL (node:http + jose); API under /api/
#   DPOP_INTEROP_CLIENT_ID_BACKEND      confidential client (client_credentials)
#   DPOP_INTEROP_CLIENT_SECRET_BACKEND  its secret (client_secret_basic)
#   DPOP_INTEROP_CLIENT_ID_PUBLIC       public native client (code+PKCE, refresh, device)
#   DPOP_INTEROP_REDIRECT_URI           its registered loopback redirect (any port allowed)
#   DPOP_INTEROP_FAPI_ISSUER            FAPI 2.0 AS issuer URL (oidc-provider, AS_PROFILE=fapi2)
#   DPOP_INTEROP_FAPI_CLIENT_ID         its confidential client (private_key_jwt)
#   DPOP_INTEROP_FAPI_CLIENT_KEY        path to that client's private JWK (ES256, kid, alg)
#   DPOP_INTEROP_FAPI_CLIENT_JWKS       path to its private JWK Set (ES256, PS256, EdDSA)
#   DPOP_INTEROP_LOGS                   directory holding as.log, as-fapi.log and rs.log
# exported, stops the servers and exits with the command's status.
# Server logs are printed when the command fails (or always with DPOP_INTEROP_VERBOSE=1).
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 <command...>" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || { echo "interop: node is not installed" >&2; exit 1; }

# Dependencies: npm ci when node_modules is missing or was installed from another lock file.
lock_sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
stamp="$here/node_modules/.interop-lock-sha256"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
	echo "interop: npm ci (node_modules missing or stale)" >&2
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
	echo "$lock_sum" >"$stamp"
fi

run=$(mktemp -d "${TMPDIR:-/tmp}/dpop-interop.XXXXXX")
as_pid=""
fapi_pid=""
rs_pid=""
status=1

show_logs() {
	for f in "$run/rs.log" "$run/as.log" "$run/as-fapi.log"; do
		[ -f "$f" ] || continue
		echo "----- $(basename "$f") -----" >&2
		tail -n 200 "$f" >&2
	done
}

cleanup() {
	local pid
	for pid in $as_pid $fapi_pid $rs_pid; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $as_pid $fapi_pid $rs_pid; do
		# bounded: SIGKILL after ~5s
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "$status" -ne 0 ] || [ "${DPOP_INTEROP_VERBOSE:-0}" = 1 ]; then
		show_logs
	fi
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "interop: $*" >&2
	status=1
	exit 1
}

# wait_file FILE PID NAME: until FILE exists (the server writes it once listening).
wait_file() {
	for _ in $(seq 150); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || fail "$3 exited before listening"
		sleep 0.1
	done
	fail "$3 did not start listening within 15s"
}

# wait_http URL NAME: until GET URL answers 200.
wait_http() {
	for _ in $(seq 150); do
		if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	fail "$2 did not answer $1 within 15s"
}

# The AS configuration needs the RS URL, the RS needs the AS issuers: start the RS
# first (it reads the issuer files lazily), then both ASes with the RS URL.
cd "$here"
RS_URL_FILE="$run/rs.url" AS_ISSUER_FILE="$run/as.issuer" AS_FAPI_ISSUER_FILE="$run/as-fapi.issuer" \
	node rs.mjs >"$run/rs.log" 2>&1 &
rs_pid=$!
wait_file "$run/rs.url" "$rs_pid" "resource server (rs.mjs)"
rs_url=$(cat "$run/rs.url")

RS_URL="$rs_url" AS_ISSUER_FILE="$run/as.issuer" \
	node as.mjs >"$run/as.log" 2>&1 &
as_pid=$!
mkdir -m 700 "$run/fapi-keys"
RS_URL="$rs_url" AS_PROFILE=fapi2 AS_CLIENT_KEY_DIR="$run/fapi-keys" AS_ISSUER_FILE="$run/as-fapi.issuer" \
	node as.mjs >"$run/as-fapi.log" 2>&1 &
fapi_pid=$!
wait_file "$run/as.issuer" "$as_pid" "authorization server (as.mjs)"
issuer=$(cat "$run/as.issuer")
wait_file "$run/as-fapi.issuer" "$fapi_pid" "FAPI 2.0 authorization server (AS_PROFILE=fapi2 as.mjs)"
fapi_issuer=$(cat "$run/as-fapi.issuer")

wait_http "$issuer/.well-known/openid-configuration" "authorization server"
wait_http "$fapi_issuer/.well-known/openid-configuration" "FAPI 2.0 authorization server"
wait_http "$rs_url/healthz" "resource server"
cd - >/dev/null

export DPOP_INTEROP_ISSUER="$issuer"
export DPOP_INTEROP_RS="$rs_url"
export DPOP_INTEROP_CLIENT_ID_BACKEND=backend
export DPOP_INTEROP_CLIENT_SECRET_BACKEND=backend-secret
export DPOP_INTEROP_CLIENT_ID_PUBLIC=cli
export DPOP_INTEROP_REDIRECT_URI=http://127.0.0.1/callback
export DPOP_INTEROP_FAPI_ISSUER="$fapi_issuer"
export DPOP_INTEROP_FAPI_CLIENT_ID=fapi
export DPOP_INTEROP_FAPI_CLIENT_KEY="$run/fapi-keys/fapi-client.jwk"
export DPOP_INTEROP_FAPI_CLIENT_JWKS="$run/fapi-keys/fapi-client.jwks"
export DPOP_INTEROP_LOGS="$run"
echo "interop: AS $issuer, FAPI 2.0 AS $fapi_issuer, RS $rs_url" >&2

set +e
"$@"
status=$?
set -e
exit "$status"

#!/usr/bin/env bash
# with-softhsm.sh runs a command against a real, throwaway PKCS #11 token:
# Debian's softhsm2, with its token directory and configuration in a
# temporary directory that is removed at exit, also when the command fails.
#
# Usage: scripts/with-softhsm.sh <command...>
#   e.g. scripts/with-softhsm.sh bash -c 'cd pkcs11key && go test -race -count=1 ./...'
#
# Missing Debian packages (softhsm2) are installed with apt-get. The command
# sees DPOP_PKCS11_TEST=1, DPOP_PKCS11_MODULE (the module's path),
# DPOP_PKCS11_TOKEN (the token's label), DPOP_PKCS11_PIN (its user PIN) and
# SOFTHSM2_CONF; its exit status is the script's.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 <command...>" >&2
	exit 2
fi

if ! command -v softhsm2-util >/dev/null; then
	sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	echo "with-softhsm.sh: installing softhsm2" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends softhsm2 >/dev/null
fi

module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
	if [[ -f "$m" ]]; then
		module=$m
		break
	fi
done
if [[ -z "$module" ]]; then
	echo "with-softhsm.sh: libsofthsm2.so not found" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tokens"
cat >"$tmp/softhsm2.conf" <<CONF
directories.tokendir = $tmp/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$tmp/softhsm2.conf"
export DPOP_PKCS11_TEST=1
export DPOP_PKCS11_MODULE="$module"
export DPOP_PKCS11_TOKEN="dpop-test"
export DPOP_PKCS11_PIN="softhsm-user-pin-4711" # distinctive: tests look for it in output
softhsm2-util --init-token --free --label "$DPOP_PKCS11_TOKEN" \
	--pin "$DPOP_PKCS11_PIN" --so-pin "5678" >/dev/null

status=0
"$@" || status=$?
exit "$status"

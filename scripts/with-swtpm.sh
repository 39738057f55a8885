#!/usr/bin/env bash
# with-swtpm.sh runs a command against two real, throwaway software TPM 2.0
# devices: Debian's swtpm (libtpms), each with a fresh state directory (so
# fresh seeds: a key made by one cannot be loaded by the other), serving raw
# TPM commands on a Unix socket. Both are stopped and their state removed at
# exit, also when the command fails.
#
# Usage: scripts/with-swtpm.sh <command...>
#   e.g. scripts/with-swtpm.sh bash -c 'cd tpmkey && go test -race -count=1 ./...'
#
# Missing Debian packages (swtpm, swtpm-tools) are installed with apt-get.
# The command sees DPOP_TPM_TEST=1, DPOP_TPM_SOCKET (the TPM to use) and
# DPOP_TPM_SOCKET2 (another TPM); its exit status is the script's.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 <command...>" >&2
	exit 2
fi

if ! command -v swtpm >/dev/null; then
	sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	echo "with-swtpm.sh: installing swtpm" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends swtpm swtpm-tools >/dev/null
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# start_tpm NAME: starts swtpm with its state in $tmp/NAME and waits for its
# socket $tmp/NAME.sock.
start_tpm() {
	mkdir -p "$tmp/$1"
	swtpm socket --tpm2 --tpmstate "dir=$tmp/$1" \
		--server "type=unixio,path=$tmp/$1.sock" \
		--ctrl "type=unixio,path=$tmp/$1.ctrl" \
		--flags not-need-init,startup-clear \
		--log "file=$tmp/$1.log" &
	pids+=($!)
	for _ in $(seq 100); do
		[[ -S "$tmp/$1.sock" ]] && return 0
		sleep 0.1
	done
	echo "with-swtpm.sh: swtpm $1 did not open its socket; its log:" >&2
	cat "$tmp/$1.log" >&2 || true
	exit 1
}
start_tpm tpm1
start_tpm tpm2

export DPOP_TPM_TEST=1
export DPOP_TPM_SOCKET="$tmp/tpm1.sock"
export DPOP_TPM_SOCKET2="$tmp/tpm2.sock"

status=0
"$@" || status=$?
exit "$status"

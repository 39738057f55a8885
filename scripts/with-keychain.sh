#!/usr/bin/env bash
# with-keychain.sh runs a command against a real, throwaway Secret Service:
# a private D-Bus session bus (dbus-run-session) with gnome-keyring-daemon
# serving org.freedesktop.secrets and an unlocked "login" collection, under a
# temporary HOME and XDG directories that are removed at exit.
#
# Usage: scripts/with-keychain.sh <command...>
#   e.g. scripts/with-keychain.sh go test -race -count=1 ./keystore/
#
# Missing Debian packages (dbus, gnome-keyring, libsecret-tools) are installed
# with apt-get. The command sees DPOP_KEYCHAIN_TEST=1 and the private
# DBUS_SESSION_BUS_ADDRESS; its exit status is the script's.
set -euo pipefail

if [[ "${1:-}" == "--inside-session" ]]; then
	# Second stage: runs under dbus-run-session.
	shift
	# --unlock reads the password from stdin; on a fresh HOME it creates the
	# "login" keyring with that password, unlocked. Without --foreground it
	# forks, prints its environment and the parent exits.
	printf "%s" "$DPOP_KEYCHAIN_TEST_PASSWORD" |
		gnome-keyring-daemon --unlock --components=secrets >"$WITH_KEYCHAIN_TMP/daemon.env"
	# Wait until org.freedesktop.secrets is owned on the bus.
	for _ in $(seq 100); do
		if dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
			org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
			grep -q 'boolean true'; then
			break
		fi
		sleep 0.1
	done
	pid=$(dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
		org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets |
		awk '/uint32/ {print $2}')
	if [[ -z "$pid" ]]; then
		echo "with-keychain.sh: gnome-keyring-daemon did not register org.freedesktop.secrets" >&2
		exit 1
	fi
	trap 'kill "$pid" 2>/dev/null || true' EXIT
	status=0
	"$@" || status=$?
	exit "$status"
fi

if [[ $# -eq 0 ]]; then
	echo "usage: $0 <command...>" >&2
	exit 2
fi

need=()
command -v dbus-run-session >/dev/null || need+=(dbus)
command -v dbus-send >/dev/null || need+=(dbus)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v secret-tool >/dev/null || need+=(libsecret-tools)
if [[ ${#need[@]} -gt 0 ]]; then
	sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	echo "with-keychain.sh: installing ${need[*]}" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${need[@]}" >/dev/null
fi

# Keep Go's module and build caches, which default to places under HOME.
if command -v go >/dev/null; then
	GOPATH=$(go env GOPATH) GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)
	export GOPATH GOMODCACHE GOCACHE
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/run" "$tmp/data" "$tmp/config" "$tmp/cache"
chmod 700 "$tmp/run"
export WITH_KEYCHAIN_TMP="$tmp"
export HOME="$tmp/home"
export XDG_RUNTIME_DIR="$tmp/run"
export XDG_DATA_HOME="$tmp/data"
export XDG_CONFIG_HOME="$tmp/config"
export XDG_CACHE_HOME="$tmp/cache"
export DPOP_KEYCHAIN_TEST=1
export DPOP_KEYCHAIN_TEST_PASSWORD="throwaway-test-password"
unset DBUS_SESSION_BUS_ADDRESS GNOME_KEYRING_CONTROL

status=0
dbus-run-session -- bash "${BASH_SOURCE[0]}" --inside-session "$@" || status=$?
exit "$status"

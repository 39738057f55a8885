#!/usr/bin/env bash
# with-redis.sh runs a command against a real, throwaway Redis: Debian's
# redis-server on 127.0.0.1, on a free port, without persistence (no RDB
# snapshots, no append-only file), its working directory a temporary one.
# It is stopped and its directory removed at exit, also when the command
# fails.
#
# Usage: scripts/with-redis.sh <command...>
#   e.g. scripts/with-redis.sh bash -c 'cd redisstore && go test -race -count=1 ./...'
#
# A missing redis-server (Debian's redis-server package) is installed with
# apt-get. The command sees DPOP_REDIS_ADDR (host:port of the server); the
# tests that start Redis servers of their own find redis-server on PATH.
# Its exit status is the script's.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 <command...>" >&2
	exit 2
fi

if ! command -v redis-server >/dev/null; then
	sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	echo "with-redis.sh: installing redis-server" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends redis-server >/dev/null
fi

tmp=$(mktemp -d)
pid=""
cleanup() {
	if [[ -n "$pid" ]]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# free_port prints a port from 20000-59999 that nothing on 127.0.0.1
# listens on now (bash connects to it through /dev/tcp to find out).
free_port() {
	local port
	while :; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

# Redis may lose the race for the port to another process: try a few.
for _ in 1 2 3 4 5; do
	port=$(free_port)
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--dir "$tmp" --logfile "$tmp/redis.log" --daemonize no &
	pid=$!
	for _ in $(seq 100); do
		if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
			break 2
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
done
if [[ -z "$pid" ]]; then
	echo "with-redis.sh: redis-server did not start; its log:" >&2
	cat "$tmp/redis.log" >&2 || true
	exit 1
fi

export DPOP_REDIS_ADDR="127.0.0.1:$port"

status=0
"$@" || status=$?
exit "$status"

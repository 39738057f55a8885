#!/usr/bin/env bash
# with-local-modules.sh runs a command the way a nested module builds
# alone, without the workspace, but with this repository's modules served
# from this checkout instead of GitHub: `go get` and `go mod tidy` in a
# nested module ignore go.work, and need the versions of our modules that
# its go.mod requires.
#
# Usage: scripts/with-local-modules.sh <command...>
#   e.g. scripts/with-local-modules.sh bash -c 'cd otel && go get example.com/m@v1.2.0 && go mod tidy'
#
# A required version tagged in this repository is served as tagged (its
# sums are the published ones). One that is not tagged (the release being
# made) is served as the checkout is now, uncommitted changes included;
# its sums would be stale by the next change, so they are removed from the
# go.sum files afterwards: scripts/release.sh writes them. Modules from
# elsewhere come from the local module cache first, then GOPROXY, into a
# module cache of the command's own, removed at exit.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 <command...>" >&2
	exit 2
fi
here=$PWD
cd "$(dirname "$0")/.."
source scripts/modules.bash

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dpop-modules.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
git init -q --bare "$tmp/remote.git"
commit=$(snapshot "$PWD" "$tmp/remote.git")
root=$(module_path .)
untagged=()
while read -r path version; do
	dir=.
	[[ $path == "$root" ]] || dir=${path#"$root"/}
	tag=$(tag_name "$dir" "$version")
	if git rev-parse -q --verify "refs/tags/$tag^{commit}" >/dev/null; then
		git push -q "$tmp/remote.git" "refs/tags/$tag:refs/tags/$tag"
	else
		git --git-dir="$tmp/remote.git" tag "$tag" "$commit"
		untagged+=("$path $version")
	fi
done < <(for dir in $(module_dirs); do own_requires "$dir"; done | sort -u)
mapfile -t goenv < <(serve_env "$tmp" "$tmp/remote.git")

status=0
(cd "$here" && env "${goenv[@]}" "$@") || status=$?
for pv in "${untagged[@]}"; do
	read -r path version <<<"$pv"
	for dir in $(module_dirs); do
		[[ -f $dir/go.sum ]] && sed -i "\\#^$path $version\\(/go.mod\\)\\? h1:#d" "$dir/go.sum"
	done
done
exit "$status"

#!/usr/bin/env bash
# release.sh makes the commit and the tags of a release of every module of
# this repository at one version. It works locally and pushes nothing:
# CONTRIBUTING.md ("Releasing") says what to check before and how to
# publish after.
#
# Usage: scripts/release.sh vX.Y.Z      (on a clean checkout of main)
#
# The release commit changes only the nested modules' go.mod and go.sum
# files and go.work:
#   1. each nested module requires the modules of this repository it uses
#      (the core; tpmkey for examples/cli-login) at vX.Y.Z, and go.work
#      replaces vX.Y.Z of each by its directory;
#   2. each nested module is tidied without the workspace, as a user's go
#      command sees it, against this very tree served at vX.Y.Z from a git
#      repository on disk (vX.Y.Z is not published yet), until nothing
#      changes: tpmkey's go.sum is part of what examples/cli-login records
#      for tpmkey vX.Y.Z.
# Then every module is tagged on that commit: vX.Y.Z for the root module,
# DIR/vX.Y.Z for the one in DIR (otel/vX.Y.Z, tpmkey/vX.Y.Z, ...).
#
# Other modules come from the local module cache first, then GOPROXY.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/modules.bash

version=${1:-}
if [[ $# -ne 1 || ! $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
	echo "usage: $0 vX.Y.Z" >&2
	exit 2
fi
if [[ ! $version =~ ^v[01]\. ]]; then
	echo "release.sh: $version needs a /vN suffix on every module path first (go.dev/ref/mod#major-version-suffixes)" >&2
	exit 1
fi
if [[ -n $(git status --porcelain) ]]; then
	echo "release.sh: the checkout has changes; release from a clean checkout" >&2
	exit 1
fi
check_workspace

mapfile -t dirs < <(module_dirs)
tags=()
for dir in "${dirs[@]}"; do
	tag=$(tag_name "$dir" "$version")
	if git rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
		echo "release.sh: tag $tag exists already" >&2
		exit 1
	fi
	tags+=("$tag")
done
root=$(module_path .)

echo "release.sh: the nested modules require each other at $version"
for dir in "${dirs[@]:1}"; do
	while read -r path _; do
		go mod edit -require="$path@$version" "$dir/go.mod"
	done < <(own_requires "$dir")
done
sed -E -i "s#^([[:space:]]*(replace[[:space:]]+)?${root//./\\.}(/[^[:space:]]+)?)[[:space:]]+v[^[:space:]]+[[:space:]]+=>#\1 $version =>#" go.work
go work edit -fmt
check_workspace

echo "release.sh: tidying the nested modules against this tree served at $version"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dpop-release.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
git init -q --bare "$tmp/remote.git"
mapfile -t goenv < <(serve_env "$tmp" "$tmp/remote.git")
nested_state() {
	for dir in "${dirs[@]:1}"; do
		cat "$dir/go.mod" "$dir/go.sum" 2>/dev/null
	done | sha256sum
}
for round in 1 2 3 4 5; do
	if [[ $round == 5 ]]; then
		echo "release.sh: the go.mod and go.sum files still change after 4 rounds of go mod tidy" >&2
		exit 1
	fi
	commit=$(snapshot "$PWD" "$tmp/remote.git")
	for tag in "${tags[@]}"; do
		git --git-dir="$tmp/remote.git" tag -f "$tag" "$commit" >/dev/null
	done
	# The go command never fetches a version twice: forget this round's
	# predecessor of our modules, and the clone of the repository.
	rm -rf "$tmp/modcache/cache/vcs" "$tmp/modcache/cache/download/${root%/*}" "$tmp/modcache/${root%/*}"
	before=$(nested_state)
	for dir in "${dirs[@]:1}"; do
		# The sums of our modules are this round's to write.
		sed -E -i "\#^${root//./\\.}(/[^ ]+)? $version(/go.mod)? h1:#d" "$dir/go.sum"
		(cd "$dir" && env "${goenv[@]}" go mod tidy)
	done
	[[ $(nested_state) == "$before" ]] && break
done

git add -A
if ! git diff --cached --quiet; then
	git commit -q -m "Release $version: the modules require each other at $version

scripts/release.sh: the nested go.mod files require the repository's
modules at $version, go.work replaces that version by the checkout, and
the go.sum files hold the sums of this commit's modules at $version."
fi
for dir in "${dirs[@]}"; do
	git tag -a -m "$(module_path "$dir") $version" "$(tag_name "$dir" "$version")"
done
echo "release.sh: tagged $(git rev-parse --short HEAD): ${tags[*]}"
echo "publish with: git push --atomic origin HEAD:main ${tags[*]}"

#!/usr/bin/env bash
# test-install.sh installs every module of this repository the way a user
# does, with no network. It copies the checkout (uncommitted changes
# included) into a throwaway repository, makes the next release there with
# scripts/release.sh, and serves that repository from disk in place of
# https://github.com/dpopkit/dpop. Then, in a new module with a module
# cache of its own and no workspace, it runs a plain `go get` of each
# module, which must pick the release, builds a program importing every
# package of it, and `go install`s its commands (pkg@version); the
# binaries must say they were built from the release. The sums a user's
# go.sum gets for our modules must be those the release wrote into the
# nested go.sum files.
#
# Before that it checks that go.work and the go.mod files agree
# (check_workspace in scripts/modules.bash), and that the core's packages
# build with the same dependency versions in the workspace as alone, as
# its users build them.
#
# Other modules come from the local module cache (GOPROXY=file://...). If
# the cache lacks a module version whose sum a nested go.sum holds (go mod
# tidy reads them all, tests of imported packages included), a first step
# downloads it through GOPROXY: the only step that may use the network,
# once.
#
# Usage: scripts/test-install.sh                    the checkout, as the next release
#        scripts/test-install.sh -published vX.Y.Z  a published release, through GOPROXY
#                                                   and the checksum database
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/modules.bash

published=""
if [[ ${1:-} == -published && $# -eq 2 ]]; then
	published=$2
elif [[ $# -ne 0 ]]; then
	echo "usage: $0 [-published vX.Y.Z]" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dpop-install.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cache=$(go env GOMODCACHE)
root=$(module_path .)

# quiet CMD... runs CMD with its output in a log, shown if it fails.
quiet() {
	if ! "$@" >"$tmp/log" 2>&1; then
		cat "$tmp/log" >&2
		echo "test-install: failed: $*" >&2
		exit 1
	fi
}

if [[ -z $published ]]; then
	check_workspace
	deps() { go list -deps -test -f '{{with .Module}}{{.Path}} {{.Version}}{{end}}' ./... | sort -u; }
	if ! diff <(deps) <(GOWORK=off deps) >"$tmp/deps.diff"; then
		echo "test-install: in the workspace, the core builds with other versions than alone (<: workspace, >: alone):" >&2
		cat "$tmp/deps.diff" >&2
		echo "test-install: require them in the core's go.mod too (go work sync), so that its tests test what its users get" >&2
		exit 1
	fi

	mapfile -t mods < <(module_dirs | tail -n +2 | while read -r dir; do
		awk '$2 !~ /\/go.mod$/ { print $1 "@" $2 }' "$dir/go.sum"
	done | grep -v -e "^$root@" -e "^$root/" | sort -u)
	mkdir "$tmp/warm"
	(
		cd "$tmp/warm"
		export GOWORK=off GOFLAGS=-mod=mod
		go mod init warm 2>/dev/null
		GOPROXY=off GOSUMDB=off go mod download "${mods[@]}" 2>/dev/null ||
			quiet go mod download "${mods[@]}"
	)

	# The next release: the minor version after the newest release tag.
	last=$(git tag -l 'v*' | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
	if [[ -z $last ]]; then
		version=v0.1.0
	else
		IFS=. read -r major minor _ <<<"${last#v}"
		version=v$major.$((minor + 1)).0
	fi

	git init -q "$tmp/repo"
	git -C "$tmp/repo" reset -q --hard "$(snapshot "$PWD" "$tmp/repo/.git")"
	(
		cd "$tmp/repo"
		export GIT_AUTHOR_NAME=test-install GIT_AUTHOR_EMAIL=test-install@localhost
		export GIT_COMMITTER_NAME=test-install GIT_COMMITTER_EMAIL=test-install@localhost
		GOPROXY=file://$cache/cache/download GOSUMDB=off quiet scripts/release.sh "$version"
	)
	git clone -q --bare "$tmp/repo" "$tmp/remote.git"
	mapfile -t goenv < <(serve_env "$tmp" "$tmp/remote.git")
	goenv+=("GOPROXY=file://$cache/cache/download" GOSUMDB=off)
	release=$tmp/repo
else
	version=$published
	goenv=(GOWORK=off "GOMODCACHE=$tmp/modcache" "GOFLAGS=$(go env GOFLAGS) -mod=mod -modcacherw")
	release=$PWD
fi
# -trimpath: the module cache is new every run, and without it the paths
# of the sources would key the build cache, so everything would compile
# again every time.
goenv+=("GOBIN=$tmp/bin")
for i in "${!goenv[@]}"; do
	[[ ${goenv[i]} == GOFLAGS=* ]] && goenv[i]+=" -trimpath"
done

mkdir "$tmp/user"
cd "$tmp/user"
usergo() { env "${goenv[@]}" go "$@"; }
quiet usergo mod init example.com/user
mapfile -t dirs < <(cd "$release" && module_dirs)
imports=()
commands=()
for dir in "${dirs[@]}"; do
	path=$(module_path "$release/$dir")
	quiet usergo get "$path"
	got=$(usergo list -m -f '{{.Version}}' "$path" 2>/dev/null)
	if [[ $got != "$version" ]]; then
		echo "test-install: go get $path chose $got; want $version" >&2
		exit 1
	fi
	while read -r pkg name files; do
		case $pkg in */internal | */internal/*) continue ;; esac
		[[ $files == 0 ]] && continue # tests only (interop)
		if [[ $name == main ]]; then
			commands+=("$pkg")
		else
			imports+=("$pkg")
		fi
	done < <(usergo list -e -f '{{.ImportPath}} {{.Name}} {{len .GoFiles}}{{with .Module}} {{.Path}}{{end}}' "$path/..." 2>/dev/null |
		awk -v m="$path" '$4 == m { print $1, $2, $3 }')
done
{
	echo "package main"
	echo
	echo "import ("
	printf '\t_ "%s"\n' "${imports[@]}"
	echo ")"
	echo
	echo "func main() {}"
} >main.go
quiet usergo build -o /dev/null .
for pkg in "${commands[@]}"; do
	quiet usergo install "$pkg@$version"
	# Its build information: every module of ours in it is the release.
	if go version -m "$tmp/bin/${pkg##*/}" | awk -v root="$root" -v v="$version" '
		($1 == "mod" || $1 == "dep") && ($2 == root || index($2, root "/") == 1) && $3 != v { bad = 1; print }
		END { exit !bad }' >&2; then
		echo "test-install: $pkg was built from other versions than $version" >&2
		exit 1
	fi
done

# The sums a user's go command computed for our modules are the ones the
# release recorded.
for dir in "${dirs[@]:1}"; do
	while read -r path v; do
		[[ $v == "$version" ]] || continue
		for suffix in "" /go.mod; do
			want=$(grep -F "$path $v$suffix h1:" "$release/$dir/go.sum" || true)
			got=$(grep -F "$path $v$suffix h1:" go.sum || true)
			if [[ -z $want || $want != "$got" ]]; then
				echo "test-install: $dir/go.sum has \"$want\"; a user's go.sum has \"$got\"" >&2
				exit 1
			fi
		done
	done < <(cd "$release" && own_requires "$dir")
done

echo "test-install: ${#dirs[@]} modules at $version: go get and build of ${#imports[@]} packages, go install of ${#commands[@]} commands"

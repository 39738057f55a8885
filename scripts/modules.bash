# modules.bash holds what scripts/release.sh, scripts/test-install.sh and
# scripts/with-local-modules.sh share about the modules of this
# repository. It is sourced, not run; the functions work on the checkout in
# the current directory.
#
# A module is a directory with a go.mod that git tracks or would track (not
# ignored), outside testdata: the root module and the nested ones (otel,
# tpmkey, ...). Adding one needs no change here; see CONTRIBUTING.md,
# "Releasing".

# module_dirs prints the directory of every module, relative to the
# checkout: "." first, then the nested ones in lexical order.
module_dirs() {
	echo .
	git ls-files -co --exclude-standard -- '*/go.mod' | grep -v '/testdata/' | xargs -r -n1 dirname | sort -u
}

# module_path DIR prints the module path in DIR/go.mod.
module_path() {
	awk '$1 == "module" { print $2; exit }' "$1/go.mod"
}

# tag_name DIR VERSION prints the tag of DIR's module at VERSION: VERSION
# for the root module, DIR/VERSION for a nested one (the form the go
# command looks for in a repository with several modules).
tag_name() {
	if [[ $1 == . ]]; then
		echo "$2"
	else
		echo "${1#./}/$2"
	fi
}

# own_requires DIR prints "PATH VERSION" for each module of this repository
# that DIR/go.mod requires (the root module's path is the prefix of them all).
own_requires() {
	awk -v root="$(module_path .)" '
		$1 == "require" && $2 == "(" { inblock = 1; next }
		inblock && $1 == ")" { inblock = 0; next }
		{ path = $1; version = $2 }
		!inblock && $1 == "require" { path = $2; version = $3 }
		(inblock || $1 == "require") && (path == root || index(path, root "/") == 1) { print path, version }
	' "$1/go.mod"
}

# snapshot WORKTREE GITDIR commits what WORKTREE holds (tracked files as
# they are now, untracked ones unless ignored) to the repository GITDIR,
# without touching WORKTREE's own repository, and prints the commit.
snapshot() {
	local index tree
	index=$(mktemp -u "${TMPDIR:-/tmp}/dpop-index.XXXXXX")
	GIT_INDEX_FILE=$index git --git-dir="$2" --work-tree="$1" add -A
	tree=$(GIT_INDEX_FILE=$index git --git-dir="$2" write-tree)
	rm -f "$index"
	GIT_AUTHOR_NAME=dpop-scripts GIT_AUTHOR_EMAIL=scripts@localhost \
		GIT_COMMITTER_NAME=dpop-scripts GIT_COMMITTER_EMAIL=scripts@localhost \
		git --git-dir="$2" commit-tree -m "snapshot of $1" "$tree"
}

# serve_env DIR GITDIR writes DIR/gitconfig and prints the environment
# (NAME=value lines) under which the go command fetches this repository's
# modules from the git repository GITDIR, as it would from GitHub, and
# every other module from the local module cache first (then GOPROXY), into
# a module cache of its own in DIR/modcache, with no workspace: the way a
# user's go command sees a published release.
serve_env() {
	local root cache
	root=$(module_path .)
	cache=$(go env GOMODCACHE)
	cat >"$1/gitconfig" <<-CONF
	[url "file://$2"]
		insteadOf = https://$root
	[protocol "file"]
		allow = always
	CONF
	cat <<-ENV
	GIT_CONFIG_GLOBAL=$1/gitconfig
	GIT_CONFIG_NOSYSTEM=1
	GOWORK=off
	GOMODCACHE=$1/modcache
	GOFLAGS=$(go env GOFLAGS) -mod=mod -modcacherw
	GOPRIVATE=$root
	GOPROXY=file://$cache/cache/download,$(go env GOPROXY)
	ENV
}

# check_workspace checks what keeps the modules installable and the
# workspace in step with them: no go.mod has replace or exclude lines (a
# user's go command ignores them in a dependency, and `go install
# pkg@version` refuses them), go.work uses every module, and it replaces
# each version of our modules that a go.mod requires by that module's
# directory (so the workspace builds before the version is published).
check_workspace() {
	local dir path version status=0 uses replaces root
	root=$(module_path .)
	uses=$(go work edit -json | awk -F'"' '$2 == "DiskPath" { p = $4; sub(/^\.\//, "", p); print p }')
	replaces=$(awk '
		$1 == "replace" && $2 == "(" { inblock = 1; next }
		inblock && $1 == ")" { inblock = 0; next }
		inblock && $3 == "=>" { print $1, $2, $4 }
		$1 == "replace" && $4 == "=>" { print $2, $3, $5 }
	' go.work)
	for dir in $(module_dirs); do
		if go mod edit -json "$dir/go.mod" | grep -qE '"(Replace|Exclude)": \['; then
			echo "check_workspace: $dir/go.mod has replace or exclude lines; put what development needs in go.work" >&2
			status=1
		fi
		if ! grep -qxF "$dir" <<<"$uses"; then
			echo "check_workspace: go.work does not use $dir: run go work use $dir" >&2
			status=1
		fi
		while read -r path version; do
			local want=.
			[[ $path == "$root" ]] || want=${path#"$root"/}
			if ! awk -v p="$path" -v v="$version" -v d="$want" '
				$1 == p && $2 == v { sub(/^\.\//, "", $3); sub(/\/$/, "", $3); if ($3 == "" ) $3 = "."; if ($3 == d) found = 1 }
				END { exit !found }' <<<"$replaces"; then
				echo "check_workspace: $dir/go.mod requires $path $version; go.work needs: replace $path $version => ./$want" >&2
				status=1
			fi
		done < <(own_requires "$dir")
	done
	return "$status"
}

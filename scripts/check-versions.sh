#!/usr/bin/env bash
# Checks that every requirement of one module of this repository on another (a submodule on
# the core module github.com/tokenkit/oauth2refresh, conformance on the stores, ...) names a
# version that exists or is being released: one the required module has a git tag for (the
# core's tags are vX.Y.Z, a submodule's are DIR/vX.Y.Z, such as store/redisstore/v0.1.0), or the
# version in scripts/next-version. The replace directives that point such requirements at the
# working tree are ignored by the go command outside this repository, so a requirement of a
# version that was never tagged breaks `go get` for every user. See RELEASING.md.
#
# Tags are looked up in the local repository, then in the remote "origin" if there is one (a
# shallow CI clone may not have fetched them).
#
# Usage: bash scripts/check-versions.sh     (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

next=$(tr -d '[:space:]' <scripts/next-version)
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
if ! [[ $next =~ $semver ]]; then
	echo "check-versions: scripts/next-version holds \"$next\", not a version like v1.2.3" >&2
	exit 1
fi

# The repository's modules: module path -> directory ("." for the core).
declare -A dir_of
while read -r gomod; do
	d=$(dirname "$gomod")
	d=${d#./}
	path=$(awk '$1 == "module" { print $2; exit }' "$gomod")
	dir_of[$path]=$d
done < <(find . -name go.mod -not -path '*/testdata/*' -not -path './.git/*' | sort)

has_origin=false
if git remote get-url origin >/dev/null 2>&1; then
	has_origin=true
fi

# tagged TAG: whether the repository has TAG.
tagged() {
	git rev-parse -q --verify "refs/tags/$1" >/dev/null 2>&1 && return 0
	$has_origin && git ls-remote --exit-code --tags origin "refs/tags/$1" >/dev/null 2>&1
}

# requirements GOMOD: prints "path version" for each requirement of a gofmt'ed go.mod.
requirements() {
	awk '
		$1 == "require" && $2 == "(" { block = 1; next }
		block && $1 == ")" { block = 0; next }
		block && $1 !~ "^//" && NF >= 2 { print $1, $2; next }
		$1 == "require" && NF >= 3 { print $2, $3 }
	' "$1"
}

fail=0
checked=0
for path in "${!dir_of[@]}"; do
	gomod="${dir_of[$path]}/go.mod"
	while read -r req version; do
		[ -n "${dir_of[$req]+set}" ] || continue # not a module of this repository
		checked=$((checked + 1))
		d=${dir_of[$req]}
		tag=$version
		[ "$d" = . ] || tag="$d/$version"
		if [ "$version" = "$next" ] || tagged "$tag"; then
			continue
		fi
		echo "check-versions: $gomod requires $req $version, but there is no tag $tag and the next version (scripts/next-version) is $next" >&2
		fail=1
	done < <(requirements "$gomod")
done
if [ "$fail" -ne 0 ]; then
	exit 1
fi
echo "check-versions: $checked requirements between this repository's modules name tagged versions or $next"

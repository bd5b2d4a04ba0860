#!/usr/bin/env bash
# Runs every check of every module: gofmt, go vet, staticcheck, and go test -race.
# Usage: bash scripts/test.sh            (from the repository root)
# Tests that need Redis or PostgreSQL read OAUTH2REFRESH_REDIS_ADDR and OAUTH2REFRESH_POSTGRES_DSN
# (see .ci/services, which installs and starts both on loopback); without CI set they skip when
# no server answers.
set -uo pipefail
cd "$(dirname "$0")/.."

# No check may edit a go.mod or go.sum: with -mod=readonly (last, so it wins over a -mod=mod an
# environment sets) a go command that would add a line fails instead, and the end of the run
# checks that the module files are as committed. A full module graph loaded with -mod=mod
# (go list -m all, go mod download all) adds to the root go.sum the go.mod sum of
# cloud.google.com/go/compute/metadata, which x/oauth2 requires but no build needs, and which
# go mod tidy takes out again.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly"
modfiles() { git status --porcelain -- '*go.mod' '*go.sum' 2>/dev/null; }
modfiles_before=$(modfiles)

modules=$(find . -name go.mod -not -path '*/testdata/*' -printf '%h\n' | sort)
# Fetch every module's dependencies in the background (network), while the first modules are
# compiled and checked (CPU); the go command locks the module cache for concurrent use.
for m in $modules; do go -C "$m" mod download >/dev/null 2>&1; done &

STATICCHECK_VERSION=v0.8.2
bin="$(go env GOPATH)/bin"
if ! "$bin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	echo "== installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" || exit 1
fi

fail=0
step() { # step NAME CMD...: runs CMD, records a failure
	if ! "${@:2}"; then
		echo "FAIL: $1"
		fail=1
	fi
}
# A module's tests run in the background while the next module is vetted and checked: the
# cross-process tests spend much of their time waiting for tokens to expire in real time. At
# most one test run is in the background; its output is printed when it is waited for.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
testing="" # the module whose tests run in the background, if any
wait_tests() {
	[ -n "$testing" ] || return 0
	if ! wait "$test_pid"; then
		echo "FAIL: go test in $testing"
		fail=1
	fi
	echo "== go test in $testing"
	cat "$out/test.log"
	testing=""
}
step "version requirements (scripts/check-versions.sh)" bash scripts/check-versions.sh
for m in $modules; do
	echo "== module $m (${SECONDS}s)"
	unformatted=$(cd "$m" && "$(go env GOROOT)/bin/gofmt" -l .)
	if [ -n "$unformatted" ]; then
		echo "FAIL: gofmt in $m: $unformatted"
		fail=1
	fi
	step "go vet in $m" go -C "$m" vet ./...
	step "staticcheck in $m" bash -c "cd '$m' && '$bin/staticcheck' ./..."
	wait_tests
	go -C "$m" test -race -count=1 ./... >"$out/test.log" 2>&1 &
	test_pid=$! testing=$m
done
wait_tests
wait # the background go mod download
if [ "$(modfiles)" != "$modfiles_before" ]; then
	echo "FAIL: the checks changed module files:"
	modfiles
	git --no-pager diff -- '*go.mod' '*go.sum'
	fail=1
fi
if [ "$fail" -ne 0 ]; then
	echo "some checks failed"
	exit 1
fi
echo "all checks passed"

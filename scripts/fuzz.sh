#!/usr/bin/env bash
# make fuzz: runs every fuzz target for FUZZTIME (default 60s) each.
#
# `go test -fuzz` takes one target per run, so the targets are listed here,
# as "package Target" pairs, and nowhere else. The script refuses to start
# when a `func Fuzz...` in a test file is missing from the list (or the list
# names one that no longer exists), so a new target cannot be left out.
#
# Each target's committed seeds are in <package>/testdata/fuzz/<Target>/
# (plain `go test` runs them too); what the fuzzer finds on the way is kept
# in the Go build cache. A failure writes its input to testdata/fuzz/: fix
# the code, give the file a name that says what it was, and commit it.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-60s}
GO=${GO:-go}

TARGETS=(
	"./core/api FuzzParseBearer"       # the Authorization header parser
	"./core/api FuzzCreateKeyJSON"     # the create body, as parsed
	"./core/api FuzzJSONBody"          # the create body's text, through a host
	"./core/api FuzzManagementJSON"    # update, scopes, roll and verify bodies, through a host
	"./core/api FuzzSegmentMatcher"    # the v2 route matcher against gorilla/mux
	"./core/apikey FuzzParseKey"       # key shape and checksum
	"./core/config FuzzLoad"           # indigo.toml and INDIGO_ variables
	"./core/module FuzzManifest"       # a module's describe output, as the host loads it
	"./sdk/rpc FuzzRequestWire"        # host to module request conversion
	"./sdk/rpc FuzzResponseWire"       # module to host response conversion
	"./sdk/rpc FuzzManifestWire"       # the manifest over the wire
	"./sdk/rpc FuzzSocketRequest"      # host to module request framing on the data socket
	"./sdk/rpc FuzzSocketFrame"        # the data socket's frame decoders, on any bytes
)

listed=$(for t in "${TARGETS[@]}"; do echo "$t"; done | sort)
found=$(grep -rE --include='*_test.go' --exclude-dir=.git --exclude-dir=node_modules '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort)
if [ "$listed" != "$found" ]; then
	echo "scripts/fuzz.sh: the target list differs from the Fuzz functions in the tests:" >&2
	diff <(echo "$listed") <(echo "$found") | sed -n 's/^</  listed, no such function:/p; s/^>/  not listed:/p' >&2
	exit 1
fi

echo "fuzzing ${#TARGETS[@]} targets, $FUZZTIME each"
for t in "${TARGETS[@]}"; do
	read -r pkg name <<<"$t"
	echo "== $pkg $name"
	# -run limits the plain tests run first to this target's seeds. A new
	# input is minimised for 2 s at most: with the default 60 s, one input
	# could take a whole run (the counts stood still, FuzzLoad ran 1,090
	# inputs in 60 s; 340,000 in 20 s with this).
	$GO test -run "^${name}\$" -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 2s "$pkg"
done

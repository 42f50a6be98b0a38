#!/usr/bin/env bash
# Checks that a patched copy of a module under third_party/ is the pinned
# upstream release with exactly the change its PATCHED.md documents
# (recorded in PATCH.diff): every file it carries, tests included, is
# upstream's, but for that diff. go.mod and go.sum are its own, and
# PATCHED.md and PATCH.diff are the record. Run from the repository root:
#   bash third_party/check-patched.sh MODULE DIR [--record]
# It fetches the release through the Go module proxy (or the module cache).
set -euo pipefail
module=$1
ours=$2
shift 2
version=$(go list -m -f '{{.Version}}' "$module")
upstream=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$upstream" ] || [ ! -d "$upstream" ]; then
	echo "cannot fetch $module@$version to compare with $ours" >&2
	exit 1
fi
actual=$(mktemp)
trap 'rm -f "$actual"' EXIT
(
	cd "$ours"
	find . -type f ! -name go.mod ! -name go.sum ! -name PATCHED.md ! -name PATCH.diff | sort | while read -r f; do
		if [ ! -f "$upstream/$f" ]; then
			echo "only in $ours: $f"
			continue
		fi
		diff -u --label "a/${f#./}" --label "b/${f#./}" "$upstream/$f" "$f" || true
	done
) >"$actual"
if ! diff -u "$ours/PATCH.diff" "$actual"; then
	echo >&2
	echo "$ours differs from $module@$version by more (or less) than PATCH.diff records." >&2
	echo "If the change is intended, describe it in PATCHED.md and record it: bash $0 $module $ours --record" >&2
	[ "${1:-}" = "--record" ] && cp "$actual" "$ours/PATCH.diff" && echo "recorded $ours/PATCH.diff" >&2 && exit 0
	exit 1
fi
echo "$ours is $module@$version plus PATCH.diff ($(grep -c '^@@' "$ours/PATCH.diff") hunk(s))"

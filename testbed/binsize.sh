#!/usr/bin/env bash
# What each module costs in the product binary: the sizes of its symbols
# (code and data, from `go tool nm -size`), summed by module, largest first,
# as a Markdown table. Run by `make size`.
#   bash testbed/binsize.sh BINARY (built without -s -w, so that it has symbols)
set -euo pipefail
binary=$1
total=$(stat -c %s "$binary")
go tool nm -size "$binary" | awk -v total="$total" '
# A symbol is "address size type name"; the name begins with its package
# path (type and closure names too, after a prefix).
{
	name = $4
	for (i = 5; i <= NF; i++) name = name " " $i
	sub(/^(type:\.?(eq|hash)?\.?|go:(itab|link)\.?\*?)/, "", name)
	sub(/^\*/, "", name)
	pkg = name
	slash = match(pkg, /\/[^\/]*$/)
	rest = slash ? substr(pkg, slash) : pkg
	dot = index(rest, ".")
	if (dot) pkg = substr(pkg, 1, (slash ? slash - 1 : 0) + dot - 1)
	mod = module(pkg)
	size[mod] += $2
	sum += $2
}
# The module of a package: github.com/owner/name, golang.org/x/name, … and
# the standard library as one.
function module(p,   parts, n) {
	n = split(p, parts, "/")
	if (p ~ /^github\.com\/slipway\/slipway/) return "slipway (this repository)"
	if (p ~ /^(github\.com|gitlab\.com|golang\.org\/x|go\.etcd\.io|gopkg\.in|honnef\.co|modernc\.org|google\.golang\.org)\//) {
		return (n >= 3) ? parts[1] "/" parts[2] "/" parts[3] : p
	}
	if (p ~ /^[a-z0-9]+\.[a-z]+\//) return (n >= 2) ? parts[1] "/" parts[2] : p
	if (p ~ /^(runtime|internal|sync|reflect|unicode|strconv|math|sort|errors|slices|maps|iter|unsafe)/) return "Go runtime and core"
	if (p ~ /^[a-z]/) return "Go standard library"
	return "other (linker data)"
}
END {
	printf "| module | size in the binary | share |\n|---|---|---|\n"
	n = 0
	for (m in size) keys[n++] = m
	for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (size[keys[j]] > size[keys[i]]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
	for (i = 0; i < n; i++) printf "| %s | %.2f MiB | %.1f %% |\n", keys[i], size[keys[i]] / 1048576, 100 * size[keys[i]] / sum
	printf "\nSymbols: %.1f MiB of a %.1f MiB file (the rest: symbol tables, DWARF, pclntab headers).\n", sum / 1048576, total / 1048576
}'

#!/usr/bin/env bash
# What each module costs in the product binary: the sizes of its symbols
# (code and data, from `go tool nm -size`), summed by module, largest first,
# as a Markdown table. Run by `make size`.
#   bash testbed/binsize.sh BINARY (built without -s -w, so that it has symbols)
set -euo pipefail
binary=$1
total=$(stat -c %s "$binary")
# Symbols from here on are zeroed memory at run time, not bytes in the file.
bss=$(readelf -S -W "$binary" | awk '$0 ~ /NOBITS/ { for (i = 1; i <= NF; i++) if ($i == "NOBITS") { print $(i + 1); exit } }')
pclntab=$(readelf -S -W "$binary" | awk '$0 ~ /\.gopclntab/ { for (i = 1; i <= NF; i++) if ($i == "PROGBITS") { print $(i + 3); exit } }')
go tool nm -size "$binary" | awk -v total="$total" -v bss="$bss" -v pclntab="$pclntab" '
# A symbol is "address size type name". Its module is the first module path
# in the name (type, itab and closure names carry one after a prefix).
function pad(hex) { while (length(hex) < 16) hex = "0" hex; return tolower(hex) }
BEGIN { bss = pad(bss) }
pad($1) >= bss { next }
{
	name = $4
	for (i = 5; i <= NF; i++) name = name " " $i
	size[module(name)] += $2
	sum += $2
}
function module(name) {
	if (match(name, /github\.com\/slipway\/slipway/)) return "slipway (this repository)"
	if (match(name, /(github\.com|gitlab\.com)\/[^\/]+\/[^\/.(]+/)) return substr(name, RSTART, RLENGTH)
	if (match(name, /(golang\.org\/x|google\.golang\.org|go\.etcd\.io|modernc\.org|honnef\.co\/go)\/[^\/.(]+/)) return substr(name, RSTART, RLENGTH)
	if (match(name, /gopkg\.in\/[^\/]+/)) return substr(name, RSTART, RLENGTH)
	if (match(name, /^(type:|go:)?[^a-z]*(runtime|internal|sync|reflect|unique|weak|iter|unsafe)[\/.]/)) return "Go runtime"
	if (match(name, /^[a-z]/) || match(name, /^(type:|go:)/)) return "Go standard library (and linker data)"
	return "other"
}
END {
	printf "| module | size in the binary | share |\n|---|---|---|\n"
	n = 0
	for (m in size) keys[n++] = m
	for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (size[keys[j]] > size[keys[i]]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
	for (i = 0; i < n; i++) if (size[keys[i]] >= 65536) printf "| %s | %.2f MiB | %.1f %% |\n", keys[i], size[keys[i]] / 1048576, 100 * size[keys[i]] / sum
	printf "\nModules under 64 KiB left out. Code and data: %.1f MiB; besides them, Go'"'"'s function tables (.gopclntab, for stack traces; they grow with the code): %d bytes. The file with symbols is %.1f MiB (symbol tables, DWARF).\n", sum / 1048576, ("0x" pclntab) + 0, total / 1048576
}'

// Package tftp serves the TFTP root read-only (pin/tftp): the first-stage
// boot loaders PXE firmware asks for. Names are normalised the way firmware
// writes them (leading slash, backslashes) and resolved inside an os.Root,
// so "..", absolute paths and symlinks that lead out of the root are
// refused. Block size is capped at 1468 so blocks never fragment on a
// 1500-byte LAN, and tsize is always answered.
package tftp

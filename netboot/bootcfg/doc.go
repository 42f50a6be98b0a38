// Package bootcfg renders the per-machine boot configuration a netbooting
// machine fetches after its first-stage loader: the iPXE script
// (/boot.ipxe over HTTP) and GRUB's per-MAC config
// (grub/grub.cfg-01-<mac>, over TFTP and HTTP alike), from the machine's
// boot profile. TFTP and HTTP both ask Lookup first and fall back to files,
// so both doors serve one virtual tree.
package bootcfg

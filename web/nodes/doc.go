// Package nodes is what netbooting machines and BMCs fetch over HTTP, open
// on the LAN: /boot.ipxe and the files under /boot/ (per-MAC GRUB configs
// rendered), kernels and images under /assets/, the gb10 onboarding API
// (/cloud-init/*, /heartbeat, /clients) and firmware images under
// /firmware/ for BMCs.
package nodes

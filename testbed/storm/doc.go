// Package storm drives a whole site of simulated machines powering on at
// once through Slipway's real doors on a namespace LAN, and reports what
// an operator lives through: how long each machine took from power-on to
// ready, where the time went, what failed, and what the server spent.
//
// Each machine does what netbooting firmware, iPXE and an installer do, in
// order: DHCP as UEFI PXE firmware (broadcast, from its own MAC: every
// machine's frames go through one raw socket on the LAN interface, and the
// replies are matched to machines by transaction id), the first-stage
// loader over TFTP (as OVMF asks for it: blksize 1468, windowsize 4, a
// request repeated every 4 s up to 6 times; a machine whose fetch fails
// starts its network boot again from DHCP, as server firmware does, up to
// Config.BootRetries times), DHCP again as iPXE, the iPXE script, kernel and initrd
// over HTTP, cloud-init's user-data and meta-data, and a heartbeat for
// every onboarding stage started and done. Once leased, its address is
// added to the LAN interface, and everything after DHCP is spoken from it,
// so that Slipway's caller check sees each machine as itself.
//
// Meanwhile an MQTT subscriber and the console's event stream stay
// connected and count what they are sent, and the server's CPU time and
// resident memory are sampled every second. With Config.Browser, the
// console itself is open in headless Chromium on its overview (browser.go):
// the report says how many live events the page's handlers ran, how soon
// the overview showed the storm's end, and how long the first page of
// machines takes to draw with the store full. Ramp, think times and faults
// (DHCP packets lost each way, machines that read slowly) are settings.
//
// The command testbed/cmd/storm runs it inside a client namespace; the
// end-to-end bench (make bench-storm) builds the LAN, starts Slipway and
// checks what the storm reports against what Slipway stored.
package storm

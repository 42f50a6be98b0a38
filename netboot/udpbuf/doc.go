// Package udpbuf gives the netboot door's listening UDP sockets (DHCP,
// TFTP) a receive buffer that holds a site powering on at once.
//
// The kernel's default (net.core.rmem_default, about 200 KiB) holds a few
// hundred small datagrams: ten thousand machines send their DISCOVERs and
// then their TFTP read requests within milliseconds of each other, and
// each one dropped costs its machine the firmware's 4 s retransmission.
// Past net.core.rmem_max the size needs CAP_NET_ADMIN (SO_RCVBUFFORCE);
// without it the kernel's cap is what the socket gets.
package udpbuf

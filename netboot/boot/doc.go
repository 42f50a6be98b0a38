// Package boot decides what a netbooting client loads next, from what its
// DHCP request says about it: architecture (option 93), vendor class
// (option 60: PXEClient or HTTPClient) and user class (option 77: "iPXE").
// It knows nothing of packets or sockets; the DHCP server asks Decide and
// writes the answer into its reply, so the policy is tested as a table.
package boot

// Package image will build the bootable USB/ISO appliance image: a minimal
// Linux that starts the static slipway binary with the operator's
// configuration. Nothing is built here yet; the appliance runs today as a
// plain binary (see README.md, "On a real LAN").
package image

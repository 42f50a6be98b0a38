// Package tlscert gives the console and API their TLS certificate: the
// operator's own (a PEM certificate chain and key), or one Slipway makes
// for itself at first start and keeps in the data directory, and the
// SHA-256 fingerprint an operator compares with what the browser shows.
package tlscert

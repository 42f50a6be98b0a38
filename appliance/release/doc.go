// Package release keeps the OS releases Slipway's hosts netboot into: signed
// bundles an operator uploads (StarlingX USM calls them releases), each
// carrying a kernel, an initrd and optionally a root image, and the
// metadata USM shows.
//
// A release is a tar archive (optionally gzip-compressed) with a manifest,
// release.yaml, at its root (see Manifest), uploaded with a detached OpenPGP
// signature made by a key the configuration trusts (usm.trusted_keys).
// OpenPGP because operators already sign with gpg (Debian's own archive
// works that way) and ProtonMail's go-crypto, the maintained successor of
// x/crypto/openpgp, verifies it without cgo.
//
// An upload is staged outside the served tree, its signature verified
// before a byte of it is unpacked, unpacked and checked (the manifest, the
// boot files it names), then moved into place under
// <data_dir>/assets/releases/<release_id>/ and recorded: a release that
// fails any check leaves nothing behind. Its boot files become the boot
// profile "release:<release_id>".
//
// Release states are USM's (State*); the deploy lifecycle moves them.
package release

// Package config is Slipway's configuration: one YAML file laid over embedded
// defaults (defaults.yaml), decoded strictly and validated as a whole.
//
// Every problem is reported as a FieldError that names the field by its path
// in the file (lan.address, dhcp.reservations[2].mac, profiles.debian.kernel),
// the line where it stands and, where there is one, the fix. Unknown keys are
// errors, with the nearest known key suggested, so a typo never silently falls
// back to a default.
//
// To add a field: add it to the struct with a yaml tag, give it a default in
// defaults.yaml if it has one, document it in slipway.example.yaml and
// docs/config.md, and check it in validate.go.
package config

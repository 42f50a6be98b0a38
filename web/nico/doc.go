// Package nico serves NICo's REST API for trays, over Slipway's inventory,
// BMCs and firmware updates: the site's trays, and firmware updates by
// rack, tray or component (PATCH …/nico/tray/firmware and
// …/nico/rack/firmware), each update a task of the firmware updater.
//
// Callers present a Slipway session token as a JWT Bearer token; NICo
// requires a role ending in PROVIDER_ADMIN, which Slipway's admin role
// carries (SLIPWAY_PROVIDER_ADMIN). Errors are {"source","message","data"}.
package nico

// Package native is Slipway's own API under /api/v1: machines and their
// histories, BMCs and provisioning, firmware images and updates, tasks,
// users and sessions, the overview, leases, settings, and the live event
// stream the console follows. Its callers prove who they are with a
// Slipway token (Bearer), the console's session cookie and CSRF token, or
// HTTP basic; its errors are {"error": "..."}.
//
// Handlers are thin: they decode a request, call a model service through a
// small interface declared here, and map the model's read types to the
// JSON this API speaks.
package native

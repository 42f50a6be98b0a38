// Package web is Slipway's HTTP door (gofiber/fiber): one server with the
// health and readiness probes and Prometheus metrics, carrying a list of
// mounted APIs. Each API is a package under web/ that brings its routes,
// how its callers authenticate and the shape of its errors, as a Mount:
// native (/api/v1), console, nodes (what netbooting machines and BMCs
// fetch), and the dialects (drydock, nico, usm) as they land. The wiring
// lists the mounts; adding one adds a package and a line there.
//
// This package holds what mounts share: the authentication schemes
// (Bearer token, X-Auth-Token, session cookie with CSRF, HTTP basic,
// per-resource keys), role checks, error shaping and JSON decoding.
package web

// Package web is Slipway's HTTP door (gofiber/fiber): health and readiness
// probes, Prometheus metrics, the native API under /api/v1 and, as the
// capabilities land, netboot scripts and files, cloud-init, heartbeats, the
// spec dialects and the embedded console.
//
// Handlers are thin: they decode a request, call a domain service or a
// store read through a small interface declared here, and encode the
// answer. Every error leaves as JSON {"error": "..."} with a 4xx or 5xx.
package web

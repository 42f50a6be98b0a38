// Package console is the web console: one HTML page, one stylesheet and one
// ES module (files/), embedded in the binary and served under /console/.
// It fetches nothing from outside, talks to the native API with the
// session cookie and its CSRF token, and follows the bus live through the
// API's event stream. docs/console.md shows it.
package console

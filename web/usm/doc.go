// Package usm serves StarlingX's Unified Software Management API (USM,
// software API v1) over Slipway's OS releases, as StarlingX's own code
// serves it (stx.12.0), so that its `software` CLI works unmodified.
//
// It listens on a port of its own (usm.port, 5497 as StarlingX's HAProxy
// port), where GET / is USM's version document and /v1 the API. Callers
// present a Slipway session token in X-Auth-Token, as Keystone's would be:
// any role reads, operators and admins write. Errors are USM's
// {"info","warning","error"}: a refused operation is 406, an unknown
// release 404, a failure 500 with a signature to find in the log; a 401 is
// keystonemiddleware's body.
package usm

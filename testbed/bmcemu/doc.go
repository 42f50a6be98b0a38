// Package bmcemu is a Redfish BMC emulator for tests, the demo and
// benchmarks. It serves DMTF's public mockups (DSP2043, embedded under
// mockups/) and behaves like a BMC where Slipway needs one to:
//
//   - it authenticates: HTTP basic or a session (POST
//     /redfish/v1/SessionService/Sessions, then X-Auth-Token), and refuses
//     wrong credentials with 401 and a Redfish error body;
//   - ComputerSystem.Reset changes PowerState after a delay, refuses reset
//     types the mockup does not allow, and a power-on consumes a one-time
//     boot override (and tells Config.OnBoot what it booted from);
//   - PATCH honours ETags: a stale If-Match is 412, and with
//     Config.RequireIfMatch a missing one is 428, as some vendors do;
//   - UpdateService.SimpleUpdate downloads ImageURI, runs a Task that
//     progresses, then changes the firmware version (BIOS at the next
//     power-on, as real firmware does);
//   - latency, hangs, 5xx answers and failed updates can be injected with
//     SetFaults.
//
// A firmware image the emulator accepts starts with the line
// "FIRMWARE <component> <version>", component being a FirmwareInventory
// member (BMC, BIOS); anything else ends the update task in Exception, as
// a BMC refuses an image that is not for it.
//
// Each Emulator is an http.Handler; Serve puts one on a listener (HTTP or
// HTTPS with a fresh self-signed certificate) and Farm runs many on
// distinct loopback ports for scale tests.
package bmcemu

// Package drydock serves Airship Drydock's v1.0 API, as Drydock's own code
// serves it, over Slipway's model: site designs, nodes, build data, tasks
// run by the task engine, and the boot action data and reports that
// deploying nodes use.
//
// Keystone-protected routes take a Slipway token in X-Auth-Token (or
// Authorization: Bearer) and need the admin role, as every Drydock policy
// does; their errors are Drydock's {"type":"error","message",...}. The
// boot action routes take the node's X-Bootaction-Key instead, and answer
// errors as falcon does ({"title","description"}). Routes are served both
// where Airship's code has them (bootactions/nodes/{host}/units,
// bootactions/{id}/) and where the API document names them
// (bootdata/{host}/units, bootaction/{id}).
package drydock

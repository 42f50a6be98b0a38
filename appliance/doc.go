// Package appliance is Slipway's model: the vocabulary and services every
// door speaks to, and nothing that faces the network. Each concern is a
// sub-package:
//
//   - domain: machines, their MACs and NICo lifecycle, leases, onboarding
//     heartbeats, and the read types (machine, transition, lease) the doors
//     map to their own JSON or MQTT shapes;
//   - bmc: Redfish BMCs, their poller, discovery and actions;
//   - firmware: the image library and firmware updates;
//   - task: stored asynchronous work as the doors read it;
//   - outbox: the messages a commit announces, and the consumers (the
//     MQTT relay, the console's stream) that read them with cursors;
//   - auth: users, roles and sessions;
//   - config: the YAML file, its defaults and its validation;
//   - keyfile: the appliance's own secret keys.
//
// The model writes through store and imports no door: doors (netboot,
// web, broker) import it, and wiring connects the two.
package appliance

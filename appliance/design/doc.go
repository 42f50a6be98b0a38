// Package design reads a site design: the YAML documents Airship's Drydock
// takes (drydock/BaremetalNode/v1, HostProfile/v1, Rack/v1, BootAction/v1,
// and the rest of a site's set), checks them, and says what they mean for
// this box: the machines to list in the inventory (with their racks, boot
// MACs, BMCs and boot profiles), which nodes a node filter selects, and the
// boot action assets each node receives.
//
// Parse never stops at the first problem: a design comes back with every
// problem found, each naming its document and field, so that an operator
// fixes a design in one pass. Documents this box has no use for (networks,
// hardware profiles, other applications' schemas) are accepted and reported
// as not used, not refused: a real site's set validates as it is.
//
// A Library keeps designs uploaded to the box and fetches the others from
// their URL; a design reference is either.
package design

// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2023 mochi-mqtt, mochi-co

package mqtt

import "github.com/mochi-mqtt/server/v2/packets"

// delivery is a publish on its way to one subscriber: the packet that all
// its subscribers share, and the few fields that are this subscriber's
// own. A fan-out queues and keeps in flight one of these per subscriber
// instead of a whole packet: a packet is 800 bytes with some thirty
// pointers, held until its PUBACK and scanned by the garbage collector
// every cycle, and with a thousand subscribers that was most of a busy
// broker's memory and much of its CPU.
type delivery struct {
	shared          *packets.Packet // never changed once shared
	topicName       string
	subscriptionIDs []int
	expiry          int64
	packetID        uint16
	topicAlias      uint16
	qos             byte
	retain          bool
	topicAliasFlag  bool
}

// newDelivery is a delivery of pk as it is (which it then shares).
func newDelivery(pk *packets.Packet) *delivery {
	return &delivery{
		shared:          pk,
		topicName:       pk.TopicName,
		subscriptionIDs: pk.Properties.SubscriptionIdentifier,
		expiry:          pk.Expiry,
		packetID:        pk.PacketID,
		topicAlias:      pk.Properties.TopicAlias,
		qos:             pk.FixedHeader.Qos,
		retain:          pk.FixedHeader.Retain,
		topicAliasFlag:  pk.Properties.TopicAliasFlag,
	}
}

// fill makes pk the packet this subscriber gets.
func (d *delivery) fill(pk *packets.Packet) {
	*pk = *d.shared
	pk.TopicName = d.topicName
	pk.Properties.SubscriptionIdentifier = d.subscriptionIDs
	pk.Expiry = d.expiry
	pk.PacketID = d.packetID
	pk.Properties.TopicAlias = d.topicAlias
	pk.FixedHeader.Qos = d.qos
	pk.FixedHeader.Retain = d.retain
	pk.Properties.TopicAliasFlag = d.topicAliasFlag
}

// packet is the packet this subscriber gets, a copy of its own.
func (d *delivery) packet() packets.Packet {
	var pk packets.Packet
	d.fill(&pk)
	return pk
}

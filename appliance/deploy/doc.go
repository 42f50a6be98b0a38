// Package deploy runs a site design's actions over the box's machines, as
// Drydock's orchestrator does: validate the design, verify and prepare the
// site and its nodes, deploy nodes (netboot, cloud-init, boot actions run
// and reported), destroy and relabel them.
//
// Every action is a stored task on the task engine (kind "deploy/<action>");
// an action over nodes submits one subtask per node (kind
// "deploy/<action>/node", locking the machine) and ends when they all have,
// with the union of their results: success, failure, or partial_success
// when some nodes failed and others did not. A stop resumes every step.
//
// deploy_nodes gives each node one boot action context per deployment: a
// 32-byte key (hex) that the node proves itself with, and one record per
// boot action the design gives it, which the node reports into. A node
// fails when one of its actions reports failure, or is still unreported
// when the boot action timeout runs out.
package deploy

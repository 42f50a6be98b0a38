// Package swdeploy moves hosts from one OS release to another, as
// StarlingX USM's deploy does: start (a precheck, then the hosts become
// pending), each host deployed (reprovisioned into the new release through
// its BMC, netbooted, onboarded to ready) or rolled back, activate,
// complete, abort and delete, under USM's deploy and deploy-host states and
// its table of what is allowed when (states.go).
//
// There is at most one deploy at a time. It and its hosts are stored
// (store: sw_deploy, sw_deploy_hosts); every step that takes time is a task
// on the task engine, so that a restart resumes it.
package swdeploy

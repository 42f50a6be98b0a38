// Package task is stored asynchronous work as the doors read it: a
// firmware update today, Drydock actions, tray updates and deploy steps
// next. Each kind's runner writes its tasks through the store; this
// package gives the one read type they all share.
package task

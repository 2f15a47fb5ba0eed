//go:build !linux

package logcluster

import "syscall"

// childAttr has no parent-death signal to ask for outside Linux; Close kills the servers
// instead.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}

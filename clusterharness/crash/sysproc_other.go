//go:build !linux

package crash

import "syscall"

// childAttr has no parent-death signal to ask for outside Linux; the tests' cleanup kills
// the server instead.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}

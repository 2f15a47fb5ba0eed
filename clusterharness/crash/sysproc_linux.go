package crash

import "syscall"

// childAttr makes the kernel SIGKILL the server if the test process dies first (a test
// binary killed by its -timeout, say), so no server outlives the test that started it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

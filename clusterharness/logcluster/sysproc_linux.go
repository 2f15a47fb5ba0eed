package logcluster

import "syscall"

// childAttr makes the kernel SIGKILL a log server if the process that started it dies
// first (a test binary killed by its -timeout, say), so no server outlives its cluster.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

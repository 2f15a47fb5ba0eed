//go:build unix

package ports

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A port handed out stays locked for this process: another process (here another open
// file description, which flock treats the same) cannot take it, even once the port is
// free again (a killed server's, before its restart).
func TestHandedOutPortIsLockedForOtherProcesses(t *testing.T) {
	addrs, err := Free(1)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	f, err := os.OpenFile(filepath.Join(lockDir, port), os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no lock file for port %s: %v", port, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Fatalf("port %s could be locked by another process", port)
	}
}

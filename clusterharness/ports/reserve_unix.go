//go:build unix

package ports

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Test packages run in parallel processes (go test runs several packages at once), and a
// port one of them handed out may be free for a while: a killed server's, until it is
// restarted on the same port. Another process could take it meanwhile, and the restart then
// failed ("port still in use"). So each process that hands out a port also holds an
// exclusive lock on a file named after it for as long as it lives (the kernel drops the lock
// when the process ends, however it ends), and skips the ports other processes hold.
var (
	lockDir = filepath.Join(os.TempDir(), "gorestate-test-ports")
	held    []*os.File // never closed: closing would drop the lock
)

// reserve takes port for this process unless another process holds it. Without a usable
// lock directory it takes the port anyway, as before locks existed.
func reserve(port int) bool {
	if err := os.MkdirAll(lockDir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(lockDir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return false
	}
	held = append(held, f)
	return true
}

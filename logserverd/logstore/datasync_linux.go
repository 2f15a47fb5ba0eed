package logstore

import (
	"os"
	"syscall"
)

// datasync flushes f's data blocks (and only the metadata needed to read them back); WAL
// files never change size while in use, so that is all a record needs.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// openDirect opens path for writes that bypass the page cache (O_DIRECT): buffers,
// offsets and lengths must be multiples of walBlock. Filesystems without direct I/O
// (tmpfs) refuse it.
func openDirect(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
}

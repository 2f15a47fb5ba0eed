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

//go:build !linux

package logstore

import (
	"errors"
	"os"
)

func datasync(f *os.File) error { return f.Sync() }

func openDirect(string) (*os.File, error) {
	return nil, errors.New("logstore: direct I/O is used on Linux only")
}

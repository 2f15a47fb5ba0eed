// Package fsync makes directory entries durable: a file created, renamed or removed is
// only there after a crash once its directory is synced too.
package fsync

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// Dir makes the entries of dir durable. Some filesystems cannot sync a directory (EINVAL),
// and Windows cannot at all; as goleveldb does, they are taken at their word.
func Dir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

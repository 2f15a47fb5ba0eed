//go:build !unix

package localloglet

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir only creates the lock file where flock is unavailable.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

package raftstore

import (
	"fmt"

	"gorestate.dev/shared/metadata"
)

// LocalObjects reads every object of the single-node LocalStore in dir, to Import them
// into a freshly bootstrapped Raft cluster. The LocalStore must not be open elsewhere
// (goleveldb locks its directory).
func LocalObjects(dir string) (map[string]metadata.Versioned, error) {
	ls, err := metadata.OpenLocal(dir)
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	objs, err := ls.All()
	if cerr := ls.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: read local store %s: %w", dir, err)
	}
	return objs, nil
}

package localloglet

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gorestate.dev/shared/fsync"

	"gorestate.dev/shared/bifrost"
)

const segmentExt = ".wal"

// segmentState says whether a segment's file can still be read.
type segmentState int

const (
	segmentOpen    segmentState = iota
	segmentRemoved              // deleted after a trim: its records are trimmed
	segmentClosed               // the store was closed
)

// segment is one file of the shared write-ahead log.
type segment struct {
	id   uint32
	path string

	// mu is held shared by readers around ReadAt and exclusively when the file is closed,
	// so that a trim or Close never pulls the file out from under a read.
	mu    sync.RWMutex
	f     *os.File
	state segmentState

	// size is the end of the last written record. Owned by the writer goroutine (and by
	// Open before it starts).
	size int64
	// maxLSN maps each loglet with records here to its highest offset in this segment, to
	// decide when the segment may be deleted. Written only by the writer while the segment
	// is active; immutable once the writer has moved on to a newer segment.
	maxLSN map[uint64]bifrost.Offset

	// lastSeq is the sequence number of the segment's last commit record, set once the
	// writer has moved on (roll) or by recovery, for its summary; needsSummary says
	// recovery found no usable summary.
	needsSummary bool
	lastSeq      uint64
}

func segmentName(id uint32) string { return fmt.Sprintf("%010d%s", id, segmentExt) }

// parseSegmentName returns the id of a segment file name.
func parseSegmentName(name string) (uint32, bool) {
	base, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(base) != 10 {
		return 0, false
	}
	id, err := strconv.ParseUint(base, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(id), true
}

// listSegments returns the ids of the segment files in dir, ascending.
func listSegments(dir string) ([]uint32, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments in %s: %w", dir, err)
	}
	var ids []uint32
	for _, e := range ents {
		if id, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// readAt reads len(p) bytes at off. It reports bifrost.ErrTrimmed if the segment was
// deleted and bifrost.ErrClosed if the store was closed.
func (sg *segment) readAt(p []byte, off int64) error {
	sg.mu.RLock()
	defer sg.mu.RUnlock()
	switch sg.state {
	case segmentRemoved:
		return bifrost.ErrTrimmed
	case segmentClosed:
		return bifrost.ErrClosed
	}
	if _, err := sg.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("read %s at %d: %w", sg.path, off, err)
	}
	return nil
}

// close closes the file once no read is using it and marks the segment with state.
func (sg *segment) close(state segmentState) error {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.state != segmentOpen {
		return nil
	}
	sg.state = state
	if err := sg.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", sg.path, err)
	}
	return nil
}

// createSegment creates the empty segment file id in dir and makes its name durable.
func createSegment(dir string, id uint32, noSync bool) (*segment, error) {
	path := filepath.Join(dir, segmentName(id))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if !noSync {
		if err := fsync.Dir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &segment{id: id, path: path, f: f, maxLSN: make(map[uint64]bifrost.Offset)}, nil
}

package snapshot

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound says an object does not exist.
var ErrNotFound = errors.New("snapshot: object not found")

// ErrConflict says a conditional write lost: the object changed since it was read.
var ErrConflict = errors.New("snapshot: object changed concurrently")

// ObjectStore is what snapshots need of an object store (S3 or a local directory). Keys
// are slash-separated paths.
type ObjectStore interface {
	// Put stores what r yields under key, streamed: memory does not grow with its size.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens an object; ErrNotFound if it does not exist.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// ReadVersioned reads a small object and a tag of its version; ErrNotFound if absent.
	ReadVersioned(ctx context.Context, key string) ([]byte, string, error)
	// WriteIfMatch writes a small object only if its version is still version ("" = only if
	// it does not exist); ErrConflict otherwise.
	WriteIfMatch(ctx context.Context, key string, b []byte, version string) error
	// List returns the keys under prefix.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes an object (absent is fine).
	Delete(ctx context.Context, key string) error
	// Describe names the store in messages (e.g. s3://bucket/prefix).
	Describe() string
}

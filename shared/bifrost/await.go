package bifrost

import (
	"context"
	"fmt"
)

// AwaitAppend turns an AppendAsync into a blocking Append: it enqueues payloads and waits
// for the outcome or for ctx. If ctx ends first it returns ctx's error, but the records may
// still be committed. kind and id name the loglet in errors ("loglet 7"); the message is
// built only on error, since this is on every append's path.
func AwaitAppend(ctx context.Context, kind string, id uint64, appendAsync func([][]byte, func(Offset, error)), payloads [][]byte) (Offset, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("append to %s %d: %w", kind, id, err)
	}
	type result struct {
		first Offset
		err   error
	}
	ch := make(chan result, 1)
	appendAsync(payloads, func(first Offset, err error) { ch <- result{first, err} })
	select {
	case r := <-ch:
		return r.first, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("append to %s %d: %w", kind, id, ctx.Err())
	}
}

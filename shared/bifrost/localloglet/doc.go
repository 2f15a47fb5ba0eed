// Package localloglet is the single-node durable log store behind the local loglet provider.
//
// One Store per node holds every local loglet of the node (one per partition) in a single
// shared write-ahead file set, so that one fsync commits the appends of many loglets at
// once (group commit). A single writer goroutine owns the files: it takes everything
// enqueued since its last write, writes it with one write call, calls fsync once and then
// completes the callbacks in enqueue order. While one fsync runs, new appends queue up and
// form the next batch, so there is no artificial delay and batches grow with load. A
// failed write or fsync fails that batch and every later append (ErrStoreFailed).
//
// LSNs are assigned per loglet when an append is enqueued (contiguous, from 1). Tail is the
// LSN after the last durable record; LastAssigned the highest LSN handed out.
//
// # Files
//
// The store's directory holds segment files named NNNNNNNNNN.wal, a trim-point file
// (trim.meta, replaced atomically) and a LOCK file. A segment is a sequence of records:
//
//	magic  uint32  recordMagic
//	crc    uint32  CRC32C (Castagnoli) of the rest of the header and the payload
//	length uint32  payload length; the top bit marks a commit record
//	loglet uint64  loglet id (0 in commit records)
//	lsn    uint64  LSN within the loglet (>= 1); the write sequence number in commit records
//	payload [length]byte
//
// all integers little-endian. Every write call ends with a commit record carrying the next
// write sequence number, and every segment starts with one repeating the last committed
// number. Segments roll over at Options.SegmentSize; the old one is fsynced before the new
// one is created, and a segment is deleted once every loglet with records in it has
// trimmed past them.
//
// # Reads
//
// Readers only ever see durable records (fsync completed). Each loglet keeps an in-memory
// index (LSN → segment, offset, length; 12 bytes per untrimmed record) and the store keeps
// a bounded cache of the most recently written payloads (Options.CacheSize), so a reader
// tailing right behind the writer never touches disk; older records are read back with
// ReadAt and their CRC is checked again.
//
// # Recovery
//
// Open scans every segment, rebuilds the indexes and tails and checks that each loglet's
// LSNs are contiguous above its trim point. Records after the last intact commit record of
// the last segment belong to the one write a crash may have torn (never acknowledged): they
// are truncated away, whole, so an append's batch survives a crash entirely or not at all.
// Damage anywhere else is an ErrCorrupt error naming the file and offset. Damage in the
// last segment counts as committed data (an error, not a truncation) when the commit
// records around it show that a later write started, which the writer only does after
// fsyncing the damaged one. Damage inside the last write itself cannot be told from a torn
// write and drops it; so does damage to the leading commit record of a last segment that
// holds a single write.
package localloglet

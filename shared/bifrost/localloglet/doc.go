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
// Positions are loglet offsets (bifrost.Offset), assigned per loglet when an append is
// enqueued (contiguous, from 1). A store created before segment chains could be extended
// held one loglet per partition at base LSN 1, where offset == LSN, so its files are read
// unchanged. Tail is the offset after the last durable record; LastAssigned the highest
// offset handed out. Provider opens a segment's loglet by its LogletID and refuses
// segments that name another node.
//
// # Seal
//
// Seal stops a loglet for good. It first refuses every later append (*bifrost.SealedError),
// then queues a barrier behind the appends already enqueued: the writer completes it once
// all of them are durable (or the store failed), so the sealed tail is the offset after
// the last one and nothing at or above it is ever acknowledged. The sealed tail is then
// written to seal.meta (replaced atomically like trim.meta, fsynced) and only after that
// published: FindTail reports it sealed, readers at or past it get bifrost.ErrSealed and
// blocked readers wake up. A crash before the file is replaced leaves the loglet open
// with every drained record, which is fine because Seal had not returned; Seal is
// idempotent, so the caller retries. A loglet's entry in seal.meta is never removed.
//
// # Files
//
// The store's directory holds segment files named NNNNNNNNNN.wal with their summaries
// (NNNNNNNNNN.sum, see summary.go), a trim-point file
// (trim.meta), a sealed-tail file (seal.meta; both replaced atomically, see offsetsFile)
// and a LOCK file. A segment is a sequence of records:
//
//	magic  uint32  recordMagic
//	crc    uint32  CRC32C (Castagnoli) of the rest of the header and the payload
//	length uint32  payload length; the top bit marks a commit record
//	loglet uint64  loglet id (0 in commit records)
//	lsn    uint64  offset within the loglet (>= 1); the write sequence number in commit records
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
// index (loglet offset → segment, file offset, length; 12 bytes per untrimmed record) and the store keeps
// a bounded cache of the most recently written payloads (Options.CacheSize), so a reader
// tailing right behind the writer never touches disk; older records are read back with
// ReadAt and their CRC is checked again.
//
// # Recovery
//
// Open rebuilds the indexes and tails and checks that each loglet's offsets are contiguous
// above its trim point and end exactly at its sealed tail, if any. It reads each older
// segment's summary (NNNNNNNNNN.sum: the positions of its records, written when the writer
// moved on to the next segment) and scans only the last segment, or a segment whose
// summary is missing or does not match it; so a restart costs about the same however long
// the untrimmed history. Records found through a summary are checked when they are read.
//
// Records after the last intact commit record of the last segment belong to the one write
// a crash may have torn (never acknowledged): they are truncated away, whole, so an
// append's batch survives a crash entirely or not at all. Damage anywhere else in a
// scanned segment is an ErrCorrupt error naming the file and offset (in a summarized one,
// the read of the damaged record reports it). Damage in the
// last segment counts as committed data (an error, not a truncation) when the commit
// records around it show that a later write started, which the writer only does after
// fsyncing the damaged one. Damage inside the last write itself cannot be told from a torn
// write and drops it; so does damage to the leading commit record of a last segment that
// holds a single write.
package localloglet

package ids

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
)

// PartitionKey is a point in the 64-bit key space that partitions divide among themselves.
// Everything that must be processed together (an object's invocations and state, a workflow's
// promises) shares one partition key.
type PartitionKey uint64

// PartitionKeyOf hashes a routing key (object/workflow key, idempotency key) to its partition
// key.
//
// The function is persisted implicitly (in invocation ids and storage keys) and therefore must
// never change: it is FNV-1a 64 over the key's bytes followed by the MurmurHash3 fmix64
// finalizer. FNV-1a alone leaves the high bits poorly mixed for short keys, and PartitionOf
// routes by the high bits.
func PartitionKeyOf(key string) PartitionKey {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime64
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return PartitionKey(h)
}

// RandomPartitionKey spreads keyless invocations uniformly over the partitions.
func RandomPartitionKey() PartitionKey {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return PartitionKey(binary.LittleEndian.Uint64(b[:]))
}

// PartitionOf returns the partition owning pk when the key space is split into numPartitions
// equal contiguous ranges: partition i owns [i·2^64/n, (i+1)·2^64/n). It returns 0 when
// numPartitions is 0.
func PartitionOf(pk PartitionKey, numPartitions uint32) uint32 {
	hi, _ := bits.Mul64(uint64(pk), uint64(numPartitions))
	return uint32(hi)
}

// PartitionRange returns the inclusive key range [first, last] that PartitionOf assigns to
// partition p of numPartitions. It panics if p >= numPartitions.
func PartitionRange(p, numPartitions uint32) (first, last PartitionKey) {
	if p >= numPartitions {
		panic("ids.PartitionRange: partition out of range")
	}
	return rangeStart(p, numPartitions), rangeStart(p+1, numPartitions) - 1
}

// rangeStart is the smallest key k with floor(k·n / 2^64) >= p, i.e. ceil(p·2^64 / n); for
// p == n it wraps to 0 so that rangeStart(n, n)-1 is the top of the key space.
func rangeStart(p, n uint32) PartitionKey {
	if p == n {
		return 0
	}
	q, r := bits.Div64(uint64(p), 0, uint64(n))
	if r != 0 {
		q++
	}
	return PartitionKey(q)
}

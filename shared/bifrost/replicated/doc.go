// Package replicated owns the replicated loglet provider (BIFROST.md §1–§5): loglets whose
// records live on a nodeset of log servers, written by one sequencer and committed once a
// write quorum (r servers) stored them.
//
// What lives where:
//   - provider.go: Provider, one Loglet per loglet id, and the SequencerService that
//     answers writers on other nodes.
//   - seqcore.go, sequencer.go, sender.go: the sequencer. Offsets are assigned when a
//     batch is enqueued; one sender goroutine per log server sends merged, in-order
//     stores (behind a store in flight, new records gather for a third of a round trip
//     before they go, seqCore.gatherUntil); the commit rule (seqcore.go) advances the
//     known global tail and decides the callers' outcomes in one step under one lock.
//   - seal.go, findtail.go, repair.go: sealing a loglet (draining the local sequencer
//     first), finding the tail from a non-sequencer node and repairing a sealed tail.
//   - reader.go, trim.go: reading committed records from one log server at a time, trim.
//   - remote.go: forwarding appends to a sequencer on another node.
//   - completer.go: append callbacks run on their own goroutine, in decision order, so a
//     callback that appends again cannot stall a sender.
//   - faultnet (subpackage): an in-memory wire.Network with seeded message-level faults
//     for tests and the conformance suite.
//
// The protocol rules are pure state machines with no I/O and no clock of their own:
// seqCore (commit rule, per-server order, seal and availability detection), tailFinder
// (the find-tail decision) and repairPlan (which records a repair must copy). Goroutines
// around them only send messages, run timers and feed the answers back, so the rules are
// tested by feeding inputs (seqcore_test.go, findtail_test.go).
//
// Locks: sequencer.mu may be held while taking tailWatch.mu or completer.mu; Loglet.mu,
// tailWatch.mu and completer.mu are leaves. No lock is held across a network call or a
// callback.
//
// Quorums (node scope, n = nodeset size, r = replication): a write quorum is r servers; an
// f-majority is n−r+1 servers, which intersects every write quorum. Seal and find-tail need
// an f-majority; appends and repairs a write quorum.
package replicated

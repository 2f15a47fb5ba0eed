// Package protocol owns the Restate service invocation protocol (V5–V7) spoken between the
// runtime and SDK deployments: the 8-byte frame header, the message type catalogue, and
// hand-written protobuf encodings of every message, wire-compatible with Restate's
// protocol.proto.
//
// Encoding follows proto3 rules: zero scalars are omitted, sub-messages and oneof members are
// written whenever present (even when empty, because "present but empty" and "absent" mean
// different things to an SDK), and unknown fields are skipped on decode. Decoded byte slices
// are copies, so callers may keep them after reusing the input buffer.
package protocol

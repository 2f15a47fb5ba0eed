// Package bench is a closed-loop HTTP/1.1 load generator for the ingress of a Restate-compatible
// server, plus the bookkeeping around it: server memory and CPU from /proc, latency
// percentiles, and the tables and JSON files that compare two servers.
//
// Closed loop means each of N workers keeps exactly one request in flight on its own
// keep-alive connection, so the offered load adapts to the server and latency is measured
// at a fixed concurrency. The default client writes pre-serialised requests straight to
// the connection and parses answers with net/http's reader: on a 2-core machine shared
// with the server, the generator's own CPU per request has to stay small.
package bench

// Package version names the Restate release whose APIs and behaviour this server implements:
// what /version answers and what introspection records as the version that created an
// invocation.
package version

// Restate is the Restate server version this server implements.
const Restate = "1.7.12"

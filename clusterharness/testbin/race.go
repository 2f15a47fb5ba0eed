//go:build race

package testbin

// Race reports that this binary was built with -race.
const Race = true

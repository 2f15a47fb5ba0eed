//go:build race

package logcluster

// raceEnabled reports that this test binary was built with -race.
const raceEnabled = true

//go:build race

package crash

// raceEnabled reports that this test binary was built with -race.
const raceEnabled = true

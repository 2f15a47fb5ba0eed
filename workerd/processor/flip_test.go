package processor

import (
	"fmt"
	"testing"
)

// A leadership that moves A→B→A in quick succession ends with A leading and serving.
func TestQuickLeadershipFlipBack(t *testing.T) {
	for round := 0; round < 30; round++ {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			meta, log := newMetaLog(t)
			a := replica(t, meta, log, "a", RoleLeader)
			b := replica(t, meta, log, "b", RoleFollower)
			eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
			b.SetRole(RoleLeader)
			a.SetRole(RoleFollower)
			if round%2 == 0 {
				eventuallyTrue(t, "b to lead", func() bool { return b.Leader() != nil })
			}
			b.SetRole(RoleFollower)
			a.SetRole(RoleLeader)
			eventuallyTrue(t, "a to lead again", func() bool { return a.Leader() != nil && b.Leader() == nil })
			send(t, a.Leader(), newID(""))
		})
	}
}

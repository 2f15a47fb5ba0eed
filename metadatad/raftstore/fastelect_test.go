package raftstore

import (
	"strings"
	"testing"
	"time"
)

// When the leader's process is gone (its tunnels broke and nothing listens at its address
// any more), the followers elect a new leader without waiting out their heartbeat timeout;
// when only the leader's store stopped but its address still answers, they do not hurry.
func TestDeadLeaderIsReplacedWithoutWaitingForTheHeartbeatTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		gone      bool // the listener closes too: connections are refused
		wantHurry bool
	}{
		{"process gone", true, true},
		{"address still answers", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A long heartbeat timeout and a short lease tell the two paths apart: a hurried
			// election starts within 200-400ms, a normal one after 2-4s.
			c := newCluster(t, 3, func(o *Options) {
				o.HeartbeatTimeout, o.ElectionTimeout, o.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, 200*time.Millisecond
			})
			old := c.waitLeader()
			if tc.gone {
				old.srv.Close() // nothing listens at its address any more
			}
			c.stop(old) // its tunnels break
			start := time.Now()
			leader := c.waitLeader(c.running()...)
			took := time.Since(start)
			hurried := strings.Contains(c.logs.String(), "electing a new leader now")
			t.Logf("new leader %s after %v (heartbeat timeout 2s); hurried: %v", leader.name, took.Round(time.Millisecond), hurried)
			if hurried != tc.wantHurry {
				t.Fatalf("hurried = %v, want %v", hurried, tc.wantHurry)
			}
			if tc.wantHurry && took >= 1500*time.Millisecond {
				t.Fatalf("new leader after %v: no faster than the heartbeat timeout", took)
			}
		})
	}
}

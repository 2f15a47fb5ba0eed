package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/clusterharness/promtext"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/miniotest"
	"gorestate.dev/shared/rpc"
)

// withMinIO starts MinIO with a bucket and returns the environment that points a node's
// snapshots at it, and a client to look into the bucket.
func withMinIO(t *testing.T, bucket string) ([]string, *minio.Client) {
	t.Helper()
	srv := miniotest.Start(t)
	mc, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return []string{
		"RESTATE_WORKER__SNAPSHOTS__DESTINATION=s3://" + bucket + "/cluster-prefix",
		"RESTATE_WORKER__SNAPSHOTS__AWS_ENDPOINT_URL=" + srv.Endpoint,
		"RESTATE_WORKER__SNAPSHOTS__AWS_ALLOW_HTTP=true",
		"RESTATE_WORKER__SNAPSHOTS__AWS_REGION=us-east-1",
		"RESTATE_WORKER__SNAPSHOTS__AWS_ACCESS_KEY_ID=" + miniotest.AccessKey,
		"RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey,
		"RESTATE_WORKER__TRIM_DELAY_INTERVAL=0s",
	}, mc
}

func createSnapshots(t *testing.T, fabric string) []rpc.SnapshotInfo {
	t.Helper()
	var done []rpc.SnapshotInfo
	var want []uint32 // nil: every partition
	// A partition whose placed leader has not taken up leadership yet (right after the
	// cluster started, or a leader moved) is refused for now, as the API says; ask again
	// for those only, so that no partition is snapshotted twice.
	for deadline := time.Now().Add(progressTimeout); ; time.Sleep(200 * time.Millisecond) {
		body, err := json.Marshal(rpc.SnapshotsRequest{Partitions: want})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(fabric+cluster.PathPrefix+"snapshots", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var infos []rpc.SnapshotInfo
		err = json.NewDecoder(resp.Body).Decode(&infos)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("snapshots create: %d %v", resp.StatusCode, err)
		}
		want = nil
		var last rpc.SnapshotInfo
		for _, in := range infos {
			switch {
			case in.Error == "":
				done = append(done, in)
			case in.Error == cluster.NotLeadingYet && time.Now().Before(deadline):
				want, last = append(want, in.PartitionID), in
			default:
				t.Fatalf("snapshot of partition %d: %s (asked for %v)", in.PartitionID, in.Error, time.Since(deadline.Add(-progressTimeout)).Round(time.Millisecond))
			}
		}
		if len(want) == 0 {
			slices.SortFunc(done, func(a, b rpc.SnapshotInfo) int { return int(a.PartitionID) - int(b.PartitionID) })
			return done
		}
		t.Logf("snapshot of partition %d: %s; asking again", last.PartitionID, last.Error)
	}
}

// trimPoints reads each log's trim point from the cluster API.
func trimPoints(t *testing.T, fabric string) map[uint32]uint64 {
	t.Helper()
	out, err := TrimPoints(fabric)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A single node with MinIO: load, `snapshots create`, the objects in the bucket and the
// logs trimmed below the snapshots; then the node stops, its partition store is deleted
// (the metadata and the log stay), and it restores every partition from its snapshot,
// replays the log suffix written after it, and every counter holds exactly its acknowledged
// adds.
func TestSingleNodeRestoresFromSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	env, mc := withMinIO(t, "snapshots-bucket")
	uri := harness.StartExamples(t)
	srv := NewServer(t, serverBin)
	srv.Setenv(env...)
	srv.Start()
	harness.Register(t, srv.Admin, uri)

	w := NewWorkload(srv.Ingress, "add", CounterKeys("snap-", 16), 8, AcceptAdd)
	load := w.StartSteady(1, "a")
	if !load.WaitAcked(time.Time{}, 300, progressTimeout) {
		load.Stop()
		t.Fatalf("only %d calls acknowledged", load.AckedSince(time.Time{}))
	}
	load.Stop()
	DrainAll(t, w, 1)
	infos := createSnapshots(t, srv.Fabric)
	covered := map[uint32]uint64{}
	for _, in := range infos {
		covered[in.PartitionID] = in.MinAppliedLSN
	}
	var objects int
	for obj := range mc.ListObjects(context.Background(), "snapshots-bucket", minio.ListObjectsOptions{Prefix: "cluster-prefix/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		objects++
	}
	if want := 3 * len(infos); objects != want { // latest.json, metadata.json, data.kv each
		t.Fatalf("%d objects in the bucket for %d snapshots, want %d", objects, len(infos), want)
	}
	harness.Eventually(t, 10*time.Second, "the logs to be trimmed below the snapshots", func() bool {
		tp := trimPoints(t, srv.Fabric)
		for p, lsn := range covered {
			if lsn > 1 && tp[p] < lsn {
				return false
			}
		}
		return true
	})
	t.Logf("%d partitions snapshotted to MinIO (%d objects); logs trimmed to %v", len(infos), objects, trimPoints(t, srv.Fabric))
	m, err := promtext.Scrape(srv.Fabric + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Sum("restate_partition_snapshots_total", `outcome="published"`); v < float64(len(infos)) {
		t.Errorf("restate_partition_snapshots_total{outcome=published} = %v after %d snapshots", v, len(infos))
	}
	if v, _ := m.Sum("restate_partition_snapshot_duration_seconds_count"); v < float64(len(infos)) {
		t.Errorf("restate_partition_snapshot_duration_seconds_count = %v after %d snapshots", v, len(infos))
	}
	if v, _ := m.Sum("restate_partition_snapshot_bytes_total"); v <= 0 {
		t.Errorf("restate_partition_snapshot_bytes_total = %v", v)
	}

	// A suffix after the snapshots, then the partition store is lost.
	load = w.StartSteady(1, "b")
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		load.Stop()
		t.Fatal("no progress after the snapshots")
	}
	load.Stop()
	DrainAll(t, w, 1)
	srv.Kill()
	db := filepath.Join(srv.DataDir(), "node-1", "db")
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("partition store not where expected: %v", err)
	}
	if err := os.RemoveAll(db); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	srv.Start()
	t.Logf("restarted without a partition store; ready in %v", time.Since(restart).Round(time.Millisecond))
	if n := len(srv.grepLogs("restored from a snapshot")); n == 0 {
		t.Fatal("no partition was restored from a snapshot")
	}
	CheckExactlyOnce(t, w)
}

// Three nodes with MinIO under load: a node is killed, its whole data directory deleted,
// and it is started again with the same name. It rejoins by itself while the cluster serves
// (its metadata member is re-added, its log server serves new segments, its partitions
// start from the snapshots); then another node is killed, and every acknowledged add is
// there exactly once, read through the rejoined node's ingress.
func TestWipedNodeRejoinsFromSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	env, _ := withMinIO(t, "snapshots-bucket")
	uri := harness.StartExamples(t)
	c := newCluster3(t)
	// Snapshots only on demand (the default): the ones taken after the wipe are those the
	// leaders take by themselves because a log server lost records.
	for _, s := range c.nodes {
		s.Setenv(env...)
	}
	c.start()
	harness.Register(t, c.nodes[0].Admin, uri)
	c.waitPlaced(t, -1, "")

	w := NewWorkload(c.nodes[0].Ingress, "add", CounterKeys("wipe-", 16), 8, AcceptAdd)
	w.Ingresses = c.ingresses()
	load := w.StartSteady(1, "a")
	defer load.Stop()
	if !load.WaitAcked(time.Time{}, 400, progressTimeout) {
		t.Fatalf("only %d calls acknowledged", load.AckedSince(time.Time{}))
	}
	createSnapshots(t, c.nodes[0].Fabric)

	// The victim holds no metadata leadership, so that the cluster keeps its quorum
	// leader while the victim's member is re-added.
	st, err := c.status(-1)
	if err != nil {
		t.Fatal(err)
	}
	victim := slices.IndexFunc(c.names, func(n string) bool { return n != st.Metadata.Leader })
	name := c.names[victim]
	kill := time.Now()
	c.nodes[victim].Kill()
	w.client.CloseIdleConnections()
	c.waitPlaced(t, victim, "")
	if err := os.RemoveAll(c.nodes[victim].DataDir()); err != nil {
		t.Fatal(err)
	}
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		t.Fatalf("no progress with %s down", name)
	}
	restart := time.Now()
	c.nodes[victim].Start()
	t.Logf("%s wiped and restarted; ready in %v", name, time.Since(restart).Round(time.Millisecond))
	c.waitPlaced(t, -1, name)
	t.Logf("%s holds partitions again %v after its restart", name, time.Since(restart).Round(time.Millisecond))
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		t.Fatalf("no progress after %s rejoined", name)
	}
	// The placement names the wiped node as a follower before its processor has restored
	// the snapshot (a download and an import, slow under load), which it logs only then:
	// wait for the line rather than expect it at once.
	for what, line := range map[string]string{
		"its partitions started from the snapshots": "restored from a snapshot",
		"its log server knows what it lost":         "log store lost",
		"its metadata member was re-added":          "joined the metadata cluster",
	} {
		harness.Eventually(t, progressTimeout, fmt.Sprintf("the wiped node's log to say %s (%q)", what, line), func() bool {
			return len(c.nodes[victim].grepLogs(line)) > 0
		})
	}
	gap, _ := load.LongestGap(kill, time.Now())
	t.Logf("longest gap between acknowledged calls since the kill: %v", gap.Round(time.Millisecond))
	// The writers move every segment whose records the wiped node lost to a new one, where
	// it is a full replica again; until then a second failure could leave such a segment
	// without a knowable tail (its records may have been on the wiped node and the dead one).
	moved := time.Now()
	harness.Eventually(t, chainTimeout, "the segments the wiped node lost to be replaced", func() bool {
		return lostSegmentsMoved(t, c.nodes[(victim+1)%3].Fabric, name)
	})
	t.Logf("segments the wiped node lost replaced %v after it rejoined", time.Since(moved).Round(time.Millisecond))
	// Sealed segments are not copied again: the records the wiped node lost have a copy
	// fewer until a snapshot covers them and the log is trimmed past them, which the
	// leaders do at once, unasked.
	harness.Eventually(t, chainTimeout, "the logs to be trimmed past the segments the wiped node lost", func() bool {
		return lostReplicas(c.nodes[(victim+1)%3].Fabric) == ""
	})
	t.Logf("logs trimmed past the segments the wiped node lost %v after it rejoined", time.Since(moved).Round(time.Millisecond))

	// Another node goes: the rejoined one now carries its share.
	other := (victim + 1) % 3
	c.nodes[other].Kill()
	w.client.CloseIdleConnections()
	c.waitPlaced(t, other, "")
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		t.Fatalf("no progress after %s died too", c.names[other])
	}
	load.Stop()
	w.Ingress, w.Ingresses = c.nodes[victim].Ingress, nil
	DrainAll(t, w, 1)
	CheckExactlyOnce(t, w)
}

// lostReplicas names the first segment of the logs view that has a lost replica, "" if
// none has (or the view cannot be read: "view").
func lostReplicas(fabric string) string {
	logs, err := logsView(fabric)
	if err != nil {
		return "view"
	}
	for _, l := range logs.Logs {
		for _, s := range l.Segments {
			if len(s.LostReplicas) > 0 {
				return fmt.Sprintf("log %d segment %d (lost on %v)", l.ID, s.Index, s.LostReplicas)
			}
		}
	}
	return ""
}

// lostSegmentsMoved reports whether every log's open tail segment is newer than the
// segments node lost.
func lostSegmentsMoved(t *testing.T, fabric, node string) bool {
	t.Helper()
	resp, err := http.Get(fabric + metadata.PathPrefix + "v1/" + metadata.KeyNodes)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var nodes metadata.Nodes
	if json.NewDecoder(resp.Body).Decode(&nodes) != nil {
		return false
	}
	lost := nodes.Nodes[node]
	logs, err := logsView(fabric)
	if err != nil {
		return false
	}
	for _, l := range logs.Logs {
		if n := len(l.Segments); n > 0 && lost.Lost(l.ID, l.Segments[n-1].Index) {
			return false
		}
	}
	return true
}

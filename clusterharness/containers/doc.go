// Package containers runs gorestate clusters as Docker containers for tests: the role
// daemons (metadatad, workerd, ingressd) or the all-in-one gorestate node, and the example
// deployment, each in its own container built FROM scratch by images/build.sh (the images
// `make images` builds), on a private network created per test,
// where they reach each other by network alias. Tests reach them only through ports mapped
// on 127.0.0.1.
//
// A test package starts with
//
//	func TestMain(m *testing.M) { os.Exit(containers.Main(m)) }
//
// which configures testcontainers-go for this machine (no reaper, loopback host), checks
// that a Docker engine answers (else the tests skip, or fail when GORESTATE_REQUIRE_DOCKER=1),
// builds the images once and removes what the run created at the end. A test then starts a
// cluster in one call and drives it:
//
//	c := containers.StartCluster(t, containers.Topology{})
//	c.RegisterExamples(t)
//	c.Kill(t, c.Node("worker1"))
//	c.Start(t, c.Node("worker1"))
package containers

// Package raftstore owns the replicated metadata store: a metadata.Store kept by a Raft
// group (hashicorp/raft) of the nodes with the metadata-server role, with its log and
// stable store on goleveldb, file snapshots, and raft traffic tunnelled through the node's
// HTTP fabric listener (no extra port).
//
// The replicated state is an FSM mapping key → metadata.Versioned. Writes are
// compare-and-set commands that every member decides alike when it applies them; an
// import command loads a set of objects keeping their versions (migration from the
// single-node LocalStore).
//
// # Wiring into a node
//
// Open needs the fabric listener's advertised host:port, and members dial each other
// through that listener, so listen first, open the store, then serve its Handler at
// /metadata/ (it replaces metadata.NewHTTPHandler there and keeps serving the same
// /metadata/v1/ API, so metadata.Client users see no change):
//
//	ln, err := net.Listen("tcp", cfg.BindAddress)
//	addr := host:port others reach ln at             // from cfg.AdvertisedAddress, else ln.Addr()
//	s, err := raftstore.Open(raftstore.Options{
//		Dir:      filepath.Join(cfg.NodeDir(), "metadata-raft"), // raft keeps Dir/raft/...
//		NodeName: cfg.NodeName,
//		Address:  addr,
//		Logger:   logger,
//	})
//	mux.Handle("/metadata/", s.Handler())
//	go srv.Serve(ln)
//
// Then, once per start:
//
//	has, err := s.HasState()
//	switch {
//	case has:
//		// A restart: raft recovers from its log and snapshots; nothing to do.
//	case this node creates the cluster:      // e.g. the auto-provisioning node
//		err = s.Bootstrap(ctx)
//		if a LocalStore exists in cfg.NodeDir()/metadata {   // migrate it
//			objs, err := raftstore.LocalObjects(localDir)    // LocalStore must be closed
//			err = s.Import(ctx, objs)                        // keeps every version
//			// then rename localDir, so that nobody mistakes it for live data
//		}
//	default:
//		err = raftstore.Join(ctx, cfg.MetadataClient.Addresses, cfg.NodeName, addr)
//	}
//	err = s.WaitReady(ctx) // a leader is known and this member caught up
//	// now Provision, RegisterNode and the other roles, with s as their metadata.Store
//
// On shutdown stop the HTTP server, then Close the store.
//
// Handler serves under /metadata/: the raft tunnel (RaftPath), the membership endpoints
// (ClusterPath: join, members, status) and the metadata API (/metadata/v1/{key}, plus GET
// with ?consistent for a linearizable read).
package raftstore

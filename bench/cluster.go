package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"lottery/central"
	"lottery/logline"
	"lottery/pki"
	"lottery/replica"
	"lottery/storage"
)

// A replicated central in this process: K nodes (3 or 5), each with its own
// durable store in its own directory, its own replica.Replica (Raft over
// mutual TLS with the node's own certificate, issued by the run's CA as
// bin/pki issues them) and its own central.Central on its own agency port,
// wired as cmd/server wires a node. The agencies get every node's address.

// nodeTLS is one node's certificates, loaded once by Prepare.
type nodeTLS struct {
	name   string
	server *tls.Config // the agencies' TLS (nil with -tls=false)
	peer   *tls.Config // Raft's mutual TLS between nodes
}

// clusterNode is one node; its running parts are nil while it is down.
type clusterNode struct {
	name     string
	addr     string // agencies' host:port; the Raft port is RaftPortOffset above
	dir      string
	betsPath string
	tls      nodeTLS

	store  *storage.Store
	rep    *replica.Replica
	c      *central.Central
	ln     net.Listener
	served chan error
	fsyncs int64 // of the incarnations before this one
}

// cluster is the replicated central under test.
type cluster struct {
	agencies, window int
	noSync           bool
	heartbeat        time.Duration
	spec             []replica.Node
	probe            *failoverProbe // nil except in failover runs
	signer           note.Signer    // the audit log's key, every node's (nil: no audit log)

	mu    sync.Mutex // guards the nodes' running parts
	nodes []*clusterNode

	meter processMeter
}

// leaderTimeout bounds the wait for a leader, and for the nodes' files to
// become identical at the end of a run.
const leaderTimeout = 30 * time.Second

func startCluster(runDir string, nodes []nodeTLS, agencies, window int, noSync bool, heartbeat time.Duration, probe *failoverProbe, signer note.Signer) (*cluster, error) {
	cl := &cluster{agencies: agencies, window: window, noSync: noSync, heartbeat: heartbeat, probe: probe, signer: signer}
	var spec []string
	for _, t := range nodes {
		port, err := nodePort()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(runDir, t.name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		n := &clusterNode{name: t.name, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir,
			betsPath: filepath.Join(dir, "bets.csv"), tls: t}
		cl.nodes = append(cl.nodes, n)
		spec = append(spec, n.name+"="+n.addr)
	}
	var err error
	if cl.spec, err = replica.ParseNodes(strings.Join(spec, ",")); err != nil {
		return nil, err
	}
	cl.meter = startProcessMeter()
	for _, n := range cl.nodes {
		if err := cl.start(n); err != nil {
			cl.kill(nil)
			cl.meter.mem.Stop()
			return nil, fmt.Errorf("node %s: %w", n.name, err)
		}
	}
	if _, err := cl.waitLeader(leaderTimeout); err != nil {
		cl.kill(nil)
		cl.meter.mem.Stop()
		return nil, err
	}
	return cl, nil
}

// nodePort picks a free agency port whose Raft port (RaftPortOffset above)
// is free too, both below the kernel's ephemeral range: a node that is
// killed and restarted must get its ports back, and an outgoing connection
// of the agencies could otherwise take one of them meanwhile.
func nodePort() (int, error) {
	low := 32768
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	hi := low - replica.RaftPortOffset // agency ports below hi keep both out of the range
	if hi <= 2048 {
		hi = 65535 - replica.RaftPortOffset
	}
	for range 1000 {
		p := 1024 + rand.IntN(hi-1024)
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+replica.RaftPortOffset))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p, nil
	}
	return 0, errors.New("no free pair of ports for a node")
}

// start opens a node's store, its replica and its central, as cmd/server's
// serve does: central.New over the replica, listen, the replica's Start
// telling that central, Serve.
func (cl *cluster) start(n *clusterNode) error {
	store, _, err := storage.Open(n.betsPath, storage.Options{NoSync: cl.noSync})
	if err != nil {
		return err
	}
	rep, err := replica.New(replica.Config{
		Name: n.name, Nodes: cl.spec, Agencies: cl.agencies, Dir: n.betsPath + ".raft", TLS: n.tls.peer,
		Storage: storage.Options{NoSync: cl.noSync}, Log: logline.Discard(), HeartbeatTimeout: cl.heartbeat,
	}, n.betsPath, store)
	if err != nil {
		store.Close()
		return err
	}
	var ledger central.Cluster = rep
	if cl.probe != nil {
		ledger = probedLedger{Cluster: rep, probe: cl.probe, node: n}
	}
	cfg := central.Config{Agencies: cl.agencies, Window: max(cl.window, central.DefaultWindow), TLS: n.tls.server}
	if cl.signer != nil {
		cfg.Log = central.NewLog(cl.signer)
	}
	c, err := central.New(cfg, ledger, logline.Discard())
	if err != nil {
		store.Close()
		return err
	}
	ln, err := listenRetry(n.addr)
	if err != nil {
		store.Close()
		return err
	}
	if err := rep.Start(c); err != nil {
		ln.Close()
		c.Close()
		rep.Close()
		rep.Store().Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ln) }()
	cl.mu.Lock()
	n.store, n.rep, n.c, n.ln, n.served = store, rep, c, ln, served
	cl.mu.Unlock()
	return nil
}

// listenRetry listens on addr, retrying for a while: a restarted node's
// port may still be held by a connection being torn down.
func listenRetry(addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopNode stops a running node: abruptly (the listener, the central's
// connections and Raft closed at once, as close as this process gets to a
// SIGKILL: nothing is handed over and the followers learn of it only from
// the missing heartbeats) or gracefully (sessions finish first).
func (cl *cluster) stopNode(n *clusterNode, graceful bool) error {
	cl.mu.Lock()
	c, rep, ln, served := n.c, n.rep, n.ln, n.served
	n.c, n.rep, n.ln, n.served, n.store = nil, nil, nil, nil, nil
	cl.mu.Unlock()
	if c == nil {
		return nil
	}
	var errs []error
	if graceful {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		errs = append(errs, c.Shutdown(ctx))
		cancel()
	} else {
		ln.Close()
		c.Close()
	}
	if err := <-served; !errors.Is(err, central.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, err)
	}
	errs = append(errs, rep.Close())
	store := rep.Store() // a snapshot restore may have replaced the one opened
	cl.mu.Lock()
	n.fsyncs += store.Stats().Fsyncs
	cl.mu.Unlock()
	errs = append(errs, store.Close())
	return errors.Join(errs...)
}

// kill stops every node abruptly but n (nil: all).
func (cl *cluster) kill(except *clusterNode) {
	for _, n := range cl.nodes {
		if n != except {
			cl.stopNode(n, false)
		}
	}
}

// leader returns the running node that leads and takes agencies, or nil.
func (cl *cluster) leader() *clusterNode {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, n := range cl.nodes {
		if n.rep != nil {
			if leads, _ := n.rep.Leader(); leads {
				return n
			}
		}
	}
	return nil
}

func (cl *cluster) waitLeader(timeout time.Duration) (*clusterNode, error) {
	deadline := time.Now().Add(timeout)
	for {
		if n := cl.leader(); n != nil {
			return n, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no node of %d leads after %v", len(cl.nodes), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Addr is every node's address, comma-separated, as agencies are configured.
func (cl *cluster) Addr() string {
	addrs := make([]string, len(cl.nodes))
	for i, n := range cl.nodes {
		addrs[i] = n.addr
	}
	return strings.Join(addrs, ",")
}

// StoredBets is the most bets any running node has applied.
func (cl *cluster) StoredBets() int64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	best := int64(-1)
	for _, n := range cl.nodes {
		if n.rep != nil {
			best = max(best, n.rep.Store().Stats().Bets)
		}
	}
	return best
}

// nodeBets is what node n has applied, or -1 while it is down.
func (cl *cluster) nodeBets(n *clusterNode) int64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if n.rep == nil {
		return -1
	}
	return n.rep.Store().Stats().Bets
}

// Stop waits until every node's bets file is the same (followers apply the
// last entries a little after the leader), then stops the nodes. It
// reports the stores' fsyncs summed over the nodes and the bets stored,
// and an error if the files differ.
func (cl *cluster) Stop() (centralStats, error) {
	st := cl.meter.stop("every node and the agencies")
	errSame := cl.waitIdentical(leaderTimeout)
	st.StoredBets = cl.StoredBets()
	var errs []error
	for _, n := range cl.nodes {
		errs = append(errs, cl.stopNode(n, true))
		st.Fsyncs += n.fsyncs
	}
	return st, errors.Join(errSame, errors.Join(errs...))
}

// runningFiles are the bets files of the running nodes.
func (cl *cluster) runningFiles() []string {
	var paths []string
	for _, n := range cl.nodes {
		if cl.nodeBets(n) >= 0 {
			paths = append(paths, n.betsPath)
		}
	}
	return paths
}

// waitIdentical waits until the running nodes' bets files are the same
// size (followers apply the last entries a little after the leader), then
// compares their contents.
func (cl *cluster) waitIdentical(timeout time.Duration) error {
	return identicalFiles(cl.runningFiles(), timeout)
}

// identicalFiles waits until the files have the same size, then checks
// they hold the same bytes.
func identicalFiles(paths []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		sizes := map[int64][]string{}
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			sizes[fi.Size()] = append(sizes[fi.Size()], p)
		}
		if len(sizes) <= 1 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the nodes' bets files still differ in size after %v: %v", timeout, sizes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var first []byte
	for _, p := range paths {
		sum, err := fileSHA256(p)
		if err != nil {
			return err
		}
		if first == nil {
			first = sum
		} else if !bytes.Equal(sum, first) {
			return fmt.Errorf("%s differs from %s", p, paths[0])
		}
	}
	return nil
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// loadNodeTLS loads the certificates pki.Issue wrote for nodes server1 …
// serverK: each node's serves its agencies (as central.crt does for the
// single central) and authenticates it to the other nodes.
func loadNodeTLS(pkiDir string, k int, agencyTLS bool) ([]nodeTLS, error) {
	in := func(name string) string { return filepath.Join(pkiDir, name) }
	nodes := make([]nodeTLS, k)
	for i := range nodes {
		name := pki.NodeName(i + 1)
		crt, key, ca := in(pki.NodeCertFile(name)), in(pki.NodeKeyFile(name)), in(pki.CAFile)
		nodes[i].name = name
		var err error
		if agencyTLS {
			if nodes[i].server, err = pki.ServerConfig(crt, key, ca, nil); err != nil {
				return nil, err
			}
		}
		if nodes[i].peer, err = replica.PeerTLS(crt, key, ca); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}

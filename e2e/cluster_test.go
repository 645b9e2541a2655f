package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lottery/internal/testutil"
	"lottery/replica"
)

// cluster is a replicated central of three bin/server processes on
// loopback, as `make run-cluster` starts it.
type cluster struct {
	t     *testing.T
	names []string
	dirs  []string
	env   []map[string]string
	procs []*testutil.Proc
	addrs []string
}

func startCluster(t *testing.T, agencies int) *cluster {
	c := &cluster{t: t}
	var members []string
	ports := testutil.NodePorts(t, 3, replica.RaftPortOffset)
	for i, p := range ports {
		name := "server" + strconv.Itoa(i+1)
		c.names = append(c.names, name)
		c.addrs = append(c.addrs, "127.0.0.1:"+strconv.Itoa(p))
		members = append(members, name+"="+c.addrs[i])
	}
	for i, name := range c.names {
		env := testutil.NodeTLSEnv(t, name)
		env["AGENCIES"] = strconv.Itoa(agencies)
		env["NODE_NAME"] = name
		env["CLUSTER_NODES"] = strings.Join(members, ",")
		env["SERVER_PORT"] = strconv.Itoa(ports[i])
		c.env = append(c.env, env)
		c.dirs = append(c.dirs, serverDir(t))
		c.procs = append(c.procs, nil)
		c.start(i)
	}
	return c
}

// start runs node i in its directory, keeping its files.
func (c *cluster) start(i int) {
	c.t.Helper()
	c.procs[i] = testutil.StartServer(c.t, c.dirs[i], c.env[i])
}

// leader waits for a node to log that it leads, after the given count of
// lider lines in all, and returns its index.
func (c *cluster) leader(after int) int {
	c.t.Helper()
	found := -1
	testutil.WaitFor(c.t, 30*time.Second, "a leader", func() bool {
		n := 0
		for i, p := range c.procs {
			k := len(testutil.Find(p.Lines(), "lider", "success"))
			n += k
			if k > 0 && !p.Exited() {
				found = i
			}
		}
		return n > after && found >= 0
	})
	return found
}

func (c *cluster) liders() int {
	n := 0
	for _, p := range c.procs {
		n += len(testutil.Find(p.Lines(), "lider", "success"))
	}
	return n
}

// TestE2E_ClusterLeaderKilled: three nodes, five agencies; the leader is
// SIGKILLed mid-upload. The agencies fail over to the new leader and all
// get their winners; the killed node, restarted, catches up; the three
// bets files are byte-identical and hold every bet once; every running
// node logs the same draw.
func TestE2E_ClusterLeaderKilled(t *testing.T) {
	d := generated(t, 5, 20000, realWinners)
	testutil.Binaries(t)
	c := startCluster(t, len(d.files))
	lead := c.leader(0)
	var clients []*testutil.Proc
	for i, f := range d.files {
		id := i + 1
		clients = append(clients, testutil.StartClient(t, fmt.Sprintf("client%d", id), clientDir(t, id, f), clientEnv(id, strings.Join(c.addrs, ","), nil)))
	}
	// Mid-upload: once the leader stored some batches.
	if !c.procs[lead].WaitCount(runTimeout, 20, "apuesta_recibida", "success") {
		t.Fatal("the leader stored no batches")
	}
	if err := c.procs[lead].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.procs[lead].Wait(t, runTimeout)
	newLead := c.leader(c.liders())
	if newLead == lead {
		t.Fatalf("the killed node %d still leads", lead)
	}
	for _, cl := range clients {
		cl.Wait(t, runTimeout)
	}
	// Every agency finished at the new leader, and some resumed there from
	// batches the killed leader had acked.
	resumed, agencies := 0, map[string]bool{}
	for _, l := range testutil.Find(c.procs[newLead].Lines(), "agencia_conectada", "success") {
		agencies[l.Get("agency")] = true
		if n, _ := l.Int("last_batch"); n > 0 {
			resumed++
		}
	}
	if len(agencies) != len(d.files) || resumed == 0 {
		t.Errorf("the new leader took %d agencies (%d resuming), want all %d, some resuming", len(agencies), resumed, len(d.files))
	}
	c.start(lead) // catches up from the log
	for i, cl := range clients {
		lines := checkOutput(t, cl, false)
		checkShutdown(t, cl, lines)
		l, ok := testutil.FindOne(lines, "consulta_ganadores", "success")
		if n, _ := l.Int("cant_ganadores"); !ok || n != d.winners[i] {
			t.Errorf("%s: consulta_ganadores line %q, want cant_ganadores: %d", cl.Name, l.Raw, d.winners[i])
		}
	}
	var want []byte
	// The bets, the audit log's tree and the signed draw statement: every
	// node applies the same records and signs the same statement with the
	// same key (Ed25519 is deterministic), so the three are byte-identical
	// on every node (docs/audit.md, "A replicated central").
	for _, name := range []string{"bets.csv", "bets.csv.tlog", "bets.csv.sorteo"} {
		testutil.WaitFor(t, 30*time.Second, "byte-identical "+name+" files", func() bool {
			var files [3][]byte
			for i, dir := range c.dirs {
				files[i], _ = os.ReadFile(filepath.Join(dir, name))
			}
			if name == "bets.csv" {
				want = files[0]
			}
			return len(files[0]) > 0 && bytes.Equal(files[0], files[1]) && bytes.Equal(files[1], files[2])
		})
	}
	if n := bytes.Count(want, []byte("\n")); n != d.bets {
		t.Errorf("the bets files have %d rows, want %d", n, d.bets)
	}
	total := 0
	for _, w := range d.winners {
		total += w
	}
	var roots []string
	for i, p := range c.procs {
		// The restarted node draws from its log replay, or recovers it.
		var draws []testutil.Line
		testutil.WaitFor(t, 30*time.Second, c.names[i]+"'s draw line", func() bool {
			draws = append(testutil.Find(p.Lines(), "sorteo", "success"), testutil.Find(p.Lines(), "recuperar_sorteo", "success")...)
			return len(draws) > 0
		})
		if len(draws) != 1 {
			t.Errorf("%s: %d draw lines, want 1", c.names[i], len(draws))
		}
		if n, _ := draws[0].Int("ganadores"); n != total {
			t.Errorf("%s: %s, want ganadores: %d", c.names[i], draws[0].Raw, total)
		}
		if root := draws[0].Get("raiz"); root == "" || len(roots) > 0 && root != roots[0] {
			t.Errorf("%s: %s, want the root the other nodes drew from (%q)", c.names[i], draws[0].Raw, roots)
		}
		roots = append(roots, draws[0].Get("raiz"))
	}
	c.checkAdmin(newLead)
	for _, p := range c.procs {
		p.Signal(syscall.SIGTERM)
		p.Wait(t, runTimeout)
		checkOutput(t, p, false)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"lottery/internal/testutil"
)

// TestE2E_Admin runs the built central with its admin listener: it listens
// before the agencies' port and logs it; /livez, /readyz and the
// binary's -health agree it is ready; after two real agencies over TLS,
// /metrics and /status.json say what they did; the listener is the last
// resource released; and a second central that finds the admin port taken
// says so and exits 1 before serving anyone.
func TestE2E_Admin(t *testing.T) {
	const bets = 600
	d := generated(t, 2, bets, []int{1, 2})
	srv := testutil.StartServer(t, serverDir(t), map[string]string{"AGENCIES": "2"})
	lines := srv.Lines()
	adminAt := slices.IndexFunc(lines, func(l testutil.Line) bool { return l.Action == "admin" && l.Result == "success" })
	listenAt := slices.IndexFunc(lines, func(l testutil.Line) bool { return l.Action == "escuchar" })
	if adminAt < 0 || adminAt > listenAt {
		t.Fatalf("want `admin | result: success` before `escuchar`:\n%s", srv.Output())
	}
	if l, ok := testutil.FindOne(lines, "config", "success"); !ok || l.Get("admin_address") != "127.0.0.1:0" {
		t.Errorf("config line without admin_address: %q", l.Raw)
	}
	base := "http://" + lines[adminAt].Get("addr")

	testutil.WaitFor(t, runTimeout, "/readyz 200", func() bool {
		code, _ := testutil.HTTPGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	if code, body := testutil.HTTPGet(t, base+"/readyz?verbose"); code != http.StatusOK ||
		body != "[+]recovery ok\n[+]store ok\nreadyz check passed\n" {
		t.Errorf("/readyz?verbose of a single central: %d\n%s", code, body)
	}
	if code, body := testutil.HTTPGet(t, base+"/livez"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez: %d %q", code, body)
	}
	if code, out := runHealth(t, base+"/readyz"); code != 0 {
		t.Errorf("server -health on a ready central: exit %d\n%s", code, out)
	}

	var clients []*testutil.Proc
	for i, f := range d.files {
		id := i + 1
		clients = append(clients, testutil.StartClient(t, fmt.Sprintf("client%d", id), clientDir(t, id, f), clientEnv(id, srv.Addr, nil)))
	}
	for _, c := range clients {
		if code := c.Wait(t, runTimeout); code != 0 {
			t.Fatalf("%s exited %d", c.Name, code)
		}
	}
	_, metrics := testutil.HTTPGet(t, base+"/metrics")
	for _, want := range []string{
		`lottery_bets_stored_total{agency="1"} 600`,
		`lottery_bets_stored_total{agency="2"} 600`,
		`lottery_winners{agency="2"} 2`,
		"lottery_agencies_finished 2",
		"lottery_store_bets ", // refreshed by the sampler
		"lottery_handshakes_failed_total{reason=\"unknown_ca\"} 0",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	if strings.Contains(metrics, "lottery_fsync_seconds_count 0\n") || !strings.Contains(metrics, "lottery_fsync_seconds_count ") {
		t.Error("/metrics counts no fsync of a durable central that stored bets")
	}
	_, status := testutil.HTTPGet(t, base+"/status.json")
	var st struct {
		Phase  string `json:"phase"`
		Totals struct {
			Bets    uint64 `json:"bets"`
			Winners int64  `json:"winners"`
		} `json:"totals"`
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil || st.Phase != "drawn" || st.Totals.Bets != 2*bets || st.Totals.Winners != 3 {
		t.Errorf("/status.json after the draw: %+v (%v)\n%s", st, err, status)
	}

	// Another central on the same admin port: refused at start.
	taken := testutil.Start(t, "second", filepath.Join(testutil.Binaries(t), testutil.ServerBin), serverDir(t), map[string]string{
		"TLS": "off", "SERVER_PORT": fmt.Sprint(testutil.FreePort(t)), "ADMIN_ADDRESS": strings.TrimPrefix(base, "http://")})
	if code := taken.Wait(t, testutil.ExitTimeout); code != 1 {
		t.Errorf("a central whose admin port is taken exited %d, want 1:\n%s", code, taken.Output())
	}
	if l, ok := testutil.FindOne(taken.Lines(), "admin", "fail"); !ok || l.Get("error") == "" {
		t.Errorf("no `admin | result: fail` line with its error:\n%s", taken.Output())
	}
	if _, ok := testutil.FindOne(taken.Lines(), "escuchar", ""); ok {
		t.Errorf("the second central listened for agencies:\n%s", taken.Output())
	}

	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, testutil.ExitTimeout)
	lines = checkOutput(t, srv, true)
	checkShutdown(t, srv, lines)
	released := testutil.Find(lines, "shutdown", "in_progress")
	if last := released[len(released)-1]; last.Get("resource") != "admin_listener" {
		t.Errorf("last resource released %q, want admin_listener", last.Raw)
	}
	if code, _ := runHealth(t, base+"/readyz"); code != 1 {
		t.Errorf("server -health on a stopped central: exit %d, want 1", code)
	}
}

// runHealth runs `server -health url` and returns its exit code and output.
func runHealth(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testutil.Context(t), testutil.ExitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), testutil.ServerBin), "-health", url)
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// nodeView is a node as /status.json lists it.
type nodeView struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// checkAdmin reads every node's admin listener once the group has settled
// with lead leading: each is ready with the four checks of a node, only
// the leader says it leads, and each lists the three nodes with the leader
// among them.
func (c *cluster) checkAdmin(lead int) {
	t := c.t
	t.Helper()
	for i, p := range c.procs {
		l, ok := testutil.FindOne(p.Lines(), "admin", "success")
		if !ok {
			t.Errorf("%s: no admin line", c.names[i])
			continue
		}
		base := "http://" + l.Get("addr")
		testutil.WaitFor(t, runTimeout, c.names[i]+" ready", func() bool {
			code, _ := testutil.HTTPGet(t, base+"/readyz")
			return code == http.StatusOK
		})
		if _, body := testutil.HTTPGet(t, base+"/readyz?verbose"); body != "[+]recovery ok\n[+]store ok\n[+]leader ok\n[+]applied ok\nreadyz check passed\n" {
			t.Errorf("%s /readyz?verbose:\n%s", c.names[i], body)
		}
		want := "lottery_raft_is_leader 0\n"
		if i == lead {
			want = "lottery_raft_is_leader 1\n"
		}
		if _, metrics := testutil.HTTPGet(t, base+"/metrics"); !strings.Contains(metrics, want) || !strings.Contains(metrics, "lottery_raft_applied_index ") {
			t.Errorf("%s /metrics without %q or the applied index", c.names[i], want)
		}
		testutil.WaitFor(t, runTimeout, c.names[i]+"'s view of the group", func() bool {
			_, status := testutil.HTTPGet(t, base+"/status.json")
			var st struct {
				Nodes []nodeView `json:"nodes"`
			}
			if err := json.Unmarshal([]byte(status), &st); err != nil {
				t.Fatal(err)
			}
			leads := func(n nodeView) bool { return n.Name == c.names[lead] && n.Role == "leader" }
			return len(st.Nodes) == 3 && slices.ContainsFunc(st.Nodes, leads)
		})
	}
}

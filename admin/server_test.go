package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"lottery"
	"lottery/admin"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/metrics"
)

// TestMain fails the package if a serving goroutine, a connection's or the
// sampler's outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is a started admin server over a real Lottery.
type fixture struct {
	l    *metrics.Lottery
	srv  *admin.Server
	url  string
	logs *testutil.Buffer
}

// start serves cfg on 127.0.0.1:0, filling what cfg leaves empty with a
// Lottery of three agencies; the server is shut down when the test ends.
func start(t *testing.T, cfg admin.Config) *fixture {
	t.Helper()
	f := &fixture{l: metrics.New(3), logs: testutil.NewBuffer()}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Registry == nil {
		cfg.Registry = metrics.NewRegistry(f.l)
	}
	if cfg.Status == nil {
		cfg.Status = f.l.Snapshot
	}
	cfg.Log = logline.New(f.logs, slog.LevelDebug)
	srv, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	f.srv, f.url = srv, "http://"+srv.Addr().String()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return f
}

// get does one request and returns the answer with its body read.
func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestServer_Routes(t *testing.T) {
	failing := errors.New("no leader known")
	f := start(t, admin.Config{Ready: []admin.Check{
		{Name: "store", Check: func() error { return nil }},
		{Name: "leader", Check: func() error { return failing }},
	}})
	f.l.BatchStored(2, 40)
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		body               []string // substrings of the body
	}{
		{"Page", "GET", "/", 200, "text/html; charset=utf-8", []string{`id="phase"`, `id="agencies"`}},
		{"PageHead", "HEAD", "/", 200, "text/html; charset=utf-8", nil},
		{"Status", "GET", "/status.json", 200, "application/json", []string{`"phase":"receiving"`, `"bets":40`}},
		{"StatusPaged", "GET", "/status.json?page=2&per_page=2", 200, "application/json", []string{`"page":2`, `"agency":3`}},
		{"Metrics", "GET", "/metrics", 200, "text/plain", []string{`lottery_bets_stored_total{agency="2"} 40`, "go_goroutines", "process_"}},
		{"Livez", "GET", "/livez", 200, "text/plain; charset=utf-8", []string{"ok\n"}},
		{"LivezVerbose", "GET", "/livez?verbose", 200, "text/plain; charset=utf-8", []string{"[+]ping ok\nlivez check passed\n"}},
		{"Readyz", "GET", "/readyz", 503, "text/plain; charset=utf-8",
			[]string{"[+]store ok\n[-]leader failed: no leader known\nreadyz check failed\n"}},
		{"ReadyzOne", "GET", "/readyz/store", 200, "text/plain; charset=utf-8", []string{"ok\n"}},
		{"ReadyzOneFailing", "GET", "/readyz/leader", 503, "text/plain; charset=utf-8", []string{"[-]leader failed: no leader known\n"}},
		{"ReadyzUnknown", "GET", "/readyz/nope", 404, "", nil},
		{"NotFound", "GET", "/bets.csv", 404, "", nil},
		{"NotFoundUnder", "GET", "/metrics/x", 404, "", nil},
		{"NoIndexFile", "GET", "/index.html", 404, "", nil},
		{"Post", "POST", "/status.json", 405, "", nil},
		{"Delete", "DELETE", "/", 405, "", nil},
		{"PutMetrics", "PUT", "/metrics", 405, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, tt.method, f.url+tt.path)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: %s, want %d\n%s", tt.method, tt.path, resp.Status, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); tt.contentType != "" && !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
			for _, want := range tt.body {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD answered a body")
			}
			if tt.status == 405 && !strings.Contains(resp.Header.Get("Allow"), "GET") {
				t.Errorf("405 without Allow: GET")
			}
		})
	}
}

// TestServer_Headers: every answer carries the security headers; the page
// gets a policy that allows exactly its own inline script and style.
func TestServer_Headers(t *testing.T) {
	f := start(t, admin.Config{})
	for _, path := range []string{"/", "/status.json", "/metrics", "/livez", "/readyz", "/nope"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := get(t, "GET", f.url+path)
			h := resp.Header
			want := map[string]string{
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
			}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("%s: %q, want %q", k, h.Get(k), v)
				}
			}
			csp := h.Get("Content-Security-Policy")
			if !strings.HasPrefix(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if path == "/" {
				for _, part := range []string{"script-src 'sha256-", "style-src 'sha256-", "connect-src 'self'"} {
					if !strings.Contains(csp, part) {
						t.Errorf("page policy %q lacks %q", csp, part)
					}
				}
				if strings.Contains(csp, "unsafe") {
					t.Errorf("page policy %q allows unsafe sources", csp)
				}
			}
		})
	}
}

// TestServer_StatusQuery: whatever the query, status.json answers a page
// in range.
func TestServer_StatusQuery(t *testing.T) {
	f := start(t, admin.Config{})
	tests := []struct {
		query         string
		page, perPage int
	}{
		{"", 1, metrics.DefaultPerPage},
		{"page=1&per_page=1", 1, 1},
		{"page=3&per_page=1", 3, 1},
		{"page=4&per_page=1", 3, 1},
		{"page=-1&per_page=-7", 1, metrics.DefaultPerPage},
		{"page=x&per_page=1e3", 1, metrics.DefaultPerPage},
		{"page=99999999999999999999999", 1, metrics.DefaultPerPage},
		{"per_page=100000", 1, metrics.MaxPerPage},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, body := get(t, "GET", f.url+"/status.json?"+tt.query)
			var st metrics.Status
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatal(err)
			}
			if st.Page != tt.page || st.PerPage != tt.perPage {
				t.Errorf("page %d per_page %d, want %d %d", st.Page, st.PerPage, tt.page, tt.perPage)
			}
		})
	}
}

// TestServer_NoPersonalData: whatever the central counted, nothing the
// admin listener serves holds a name or a document.
func TestServer_NoPersonalData(t *testing.T) {
	f := start(t, admin.Config{})
	bet := lottery.Bet{Agency: 1, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 7574}
	f.l.BatchStored(1, 1)
	f.l.AgencyFinished(1)
	f.l.DrawCompleted(time.Unix(1, 0), map[uint32]int{1: 1})
	for _, path := range []string{"/", "/status.json", "/metrics", "/readyz?verbose"} {
		_, body := get(t, "GET", f.url+path)
		for _, secret := range []string{bet.Document, bet.FirstName, bet.LastName, bet.Birthdate} {
			if strings.Contains(body, secret) {
				t.Errorf("%s serves %q", path, secret)
			}
		}
	}
}

func TestServer_Logs(t *testing.T) {
	f := start(t, admin.Config{})
	addr := f.srv.Addr().String()
	if err := f.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := f.logs.Lines(t)
	if l, ok := testutil.FindOne(lines, "admin", "success"); !ok || l.Get("addr") != addr {
		t.Errorf("no `action: admin | result: success | addr: %s` line:\n%s", addr, f.logs)
	}
	if l, ok := testutil.FindOne(lines, "shutdown", "in_progress"); !ok || l.Get("resource") != "admin_listener" {
		t.Errorf("no `action: shutdown | result: in_progress | resource: admin_listener` line:\n%s", f.logs)
	}
}

// TestServer_Start: a port in use is reported by Start itself, with its
// contract line; a second Start is refused.
func TestServer_Start(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	logs := testutil.NewBuffer()
	srv, err := admin.New(admin.Config{Addr: ln.Addr().String(), Log: logline.New(logs, slog.LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err == nil {
		t.Fatal("Start on a port in use succeeded")
	}
	if _, ok := testutil.FindOne(logs.Lines(t), "admin", "fail"); !ok {
		t.Errorf("no `action: admin | result: fail` line:\n%s", logs)
	}
	if srv.Addr() != nil {
		t.Error("Addr after a failed Start")
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a server that never started: %v", err)
	}

	f := start(t, admin.Config{})
	if err := f.srv.Start(); !errors.Is(err, admin.ErrStarted) {
		t.Errorf("second Start: %v, want ErrStarted", err)
	}
}

// TestServer_ShutdownBounded: a request that does not finish holds
// Shutdown only until its context ends; the connection is then closed and
// the second call answers the same.
func TestServer_ShutdownBounded(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l := metrics.New(1)
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Status: func(page, perPage int) metrics.Status {
		once.Do(func() { close(entered) })
		<-release
		return l.Snapshot(page, perPage)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + srv.Addr().String() + "/status.json")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already over: Shutdown may not wait for the request
	if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v, want context.Canceled", err)
	}
	if err := srv.Shutdown(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("second Shutdown: %v, want the first one's result", err)
	}
	close(release)
	<-done
}

func TestNew_Checks(t *testing.T) {
	ok := func() error { return nil }
	tests := []struct {
		name   string
		checks []admin.Check
		err    bool
	}{
		{"OK", []admin.Check{{"store", ok}, {"leader-known", ok}, {"raft_applied", ok}}, false},
		{"None", nil, false},
		{"ErrEmptyName", []admin.Check{{"", ok}}, true},
		{"ErrSlash", []admin.Check{{"a/b", ok}}, true},
		{"ErrUpper", []admin.Check{{"Store", ok}}, true},
		{"ErrSpace", []admin.Check{{"the store", ok}}, true},
		{"ErrTwice", []admin.Check{{"store", ok}, {"store", ok}}, true},
		{"ErrNoFunc", []admin.Check{{"store", nil}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := admin.New(admin.Config{Ready: tt.checks})
			if (err != nil) != tt.err {
				t.Errorf("New: %v, want error %v", err, tt.err)
			}
			if err != nil && !errors.Is(err, admin.ErrConfig) {
				t.Errorf("%v is not ErrConfig", err)
			}
		})
	}
}

func TestGate(t *testing.T) {
	g := admin.NewGate("recovery", "recovering the store")
	f := start(t, admin.Config{Ready: []admin.Check{g.Check()}})
	resp, body := get(t, "GET", f.url+"/readyz")
	if resp.StatusCode != 503 || !strings.Contains(body, "[-]recovery failed: recovering the store\n") {
		t.Errorf("closed gate: %s %q", resp.Status, body)
	}
	g.Open()
	resp, body = get(t, "GET", f.url+"/readyz")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("open gate: %s %q", resp.Status, body)
	}
	resp, body = get(t, "GET", f.url+"/readyz?verbose")
	if resp.StatusCode != 200 || body != "[+]recovery ok\nreadyz check passed\n" {
		t.Errorf("open gate, verbose: %s %q", resp.Status, body)
	}
}

// TestServer_NothingConfigured: without a status source or a registry
// only the health endpoints exist.
func TestServer_NothingConfigured(t *testing.T) {
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	base := "http://" + srv.Addr().String()
	for path, want := range map[string]int{"/": 404, "/status.json": 404, "/metrics": 404, "/livez": 200, "/readyz": 200} {
		if resp, _ := get(t, "GET", base+path); resp.StatusCode != want {
			t.Errorf("%s: %s, want %d", path, resp.Status, want)
		}
	}
}

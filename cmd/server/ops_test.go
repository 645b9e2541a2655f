package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lottery"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/storage"
)

// TestDispatch_Health: -health exits 0 when the URL answers 200, 1 when it
// answers anything else or nothing, 2 when the URL is not one.
func TestDispatch_Health(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("[+]recovery ok\n[-]leader failed: no leader known\nreadyz check failed\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	gone := httptest.NewServer(mux)
	gone.Close()
	tests := []struct {
		name string
		args []string
		code int
		says string // on stdout or stderr
	}{
		{"OK", []string{"-health", srv.URL + "/readyz"}, exitOK, "healthy"},
		{"ErrUnready", []string{"-health", srv.URL + "/down"}, exitFailed, "[-]leader failed: no leader known"},
		{"ErrNotFound", []string{"-health", srv.URL + "/nope"}, exitFailed, "404"},
		{"ErrRefused", []string{"-health", gone.URL + "/readyz"}, exitFailed, "refused"},
		{"ErrBadURL", []string{"-health", "127.0.0.1:9090/readyz"}, exitConfig, "http://"},
		{"ErrEmptyURL", []string{"-health", ""}, exitConfig, "http://"},
		{"ErrNoURL", []string{"-health"}, exitConfig, "flag needs an argument"},
		{"ErrWithCheck", []string{"-check", "-health", srv.URL + "/readyz"}, exitConfig, "unexpected arguments"},
		{"ErrExtraArgument", []string{"-health", srv.URL + "/readyz", "more"}, exitConfig, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(tt.args, &stdout, &stderr, testutil.EnvLookup(nil))
			out := stdout.String() + stderr.String()
			if code != tt.code || !strings.Contains(out, tt.says) {
				t.Fatalf("server %q: exit %d, want %d saying %q:\n%s", tt.args, code, tt.code, tt.says, out)
			}
		})
	}
}

// TestLoadConfig_Admin reads ADMIN_ADDRESS: loopback by default, off, any
// host:port; anything else is a configuration error naming the key.
func TestLoadConfig_Admin(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name  string
		value *string // nil: not set
		want  string  // Config.Admin
		line  string  // as the config line shows it
		err   bool
	}{
		{"OK/Default", nil, "127.0.0.1:9090", "127.0.0.1:9090", false},
		{"OK/Off", ptr("off"), "", "off", false},
		{"OK/OffAnyCase", ptr("OFF"), "", "off", false},
		{"OK/AllInterfaces", ptr("0.0.0.0:9090"), "0.0.0.0:9090", "0.0.0.0:9090", false},
		{"OK/AnyPort", ptr("127.0.0.1:0"), "127.0.0.1:0", "127.0.0.1:0", false},
		{"ErrNoPort", ptr("127.0.0.1"), "", "", true},
		{"ErrBadPort", ptr("127.0.0.1:http"), "", "", true},
		{"ErrPortTooBig", ptr(":65536"), "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			if tt.value != nil {
				env["ADMIN_ADDRESS"] = *tt.value
			}
			c, err := loadConfig("config.ini", testutil.EnvLookup(env))
			switch {
			case tt.err:
				if err == nil || !strings.Contains(err.Error(), "ADMIN_ADDRESS") {
					t.Fatalf("err = %v, want one naming ADMIN_ADDRESS", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if c.Admin != tt.want || adminLine(c) != tt.line {
				t.Errorf("Admin %q (line %q), want %q (line %q)", c.Admin, adminLine(c), tt.want, tt.line)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// journalRecords is where a journal's first record is (storage's format,
// docs/durability.md): the background index starts reading there.
const journalRecords = 3 * 4096

// gatedFS holds the store's background index: its first read of the
// journal's records waits until open is closed, as a long journal would
// keep it busy, while Open's own reads (the headers, the newest group) go
// through.
type gatedFS struct {
	storage.OS
	open chan struct{}
}

func (g gatedFS) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	f, err := g.OS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".journal") {
		return f, err
	}
	return gatedFile{File: f, open: g.open}, nil
}

type gatedFile struct {
	storage.File
	open chan struct{}
}

func (f gatedFile) ReadAt(p []byte, off int64) (int, error) {
	if off == journalRecords {
		<-f.open
	}
	return f.File.ReadAt(p, off)
}

// TestOps_ReadyThroughRecovery: the admin listener answers from the moment
// the store is open: /livez 200 at once, /readyz 503 naming recovery while
// the journal is being indexed, then 200; /metrics counts the fsyncs.
func TestOps_ReadyThroughRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, _, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ { // groups of their own: the newest is not the first
		var rows lottery.Rows
		rows.AddBet(lottery.Bet{Agency: 1, FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "1990-01-01", Number: 1})
		if err := s.Append(1, seq, &rows).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := Config{Admin: "127.0.0.1:0", ShutdownTimeout: time.Second}
	cfg.Central.Agencies = 1
	logs := testutil.NewBuffer()
	o := newOps(&cfg, logline.New(logs, slog.LevelInfo))
	gate := make(chan struct{})
	var release sync.Once
	opt := storageOptions(cfg)
	opt.FS = gatedFS{open: gate}
	store, _, err := storage.Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defer release.Do(func() { close(gate) }) // before Close, which waits for the index
	if err := o.start(store); err != nil {
		t.Fatal(err)
	}
	defer o.shutdown()
	base := "http://" + o.server.Addr().String()

	if code, _ := testutil.HTTPGet(t, base+"/livez"); code != http.StatusOK {
		t.Errorf("/livez during recovery: %d, want 200", code)
	}
	code, body := testutil.HTTPGet(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]recovery failed: recovering the store") ||
		!strings.Contains(body, "[+]store ok") {
		t.Errorf("/readyz during recovery: %d\n%s", code, body)
	}
	release.Do(func() { close(gate) })
	testutil.WaitFor(t, 10*time.Second, "ready once indexed", func() bool {
		code, _ := testutil.HTTPGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	if _, ok := testutil.FindOne(testutil.Lines(logs.String()), "admin", "success"); !ok {
		t.Errorf("no `action: admin | result: success` line:\n%s", logs.String())
	}

	// A batch stored now is fsynced: the store told the instruments.
	var rows lottery.Rows
	rows.AddBet(lottery.Bet{Agency: 1, FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "1990-01-01", Number: 1})
	if err := store.Append(1, 4, &rows).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, metrics := testutil.HTTPGet(t, base+"/metrics"); !strings.Contains(metrics, "lottery_fsync_seconds_count 1\n") {
		t.Errorf("/metrics does not count the fsync:\n%s", grepLines(metrics, "lottery_fsync"))
	}
}

// grepLines returns the lines of s that contain what.
func grepLines(s, what string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, what) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

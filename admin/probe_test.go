package admin_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"lottery/admin"
)

func TestProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("[+]store ok\n[-]leader failed: no leader known\nreadyz check failed\n"))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	closed := closedPort(t)
	tests := []struct {
		name      string
		url       string
		err       bool
		unhealthy bool   // errors.Is ErrUnhealthy
		badURL    bool   // errors.Is ErrProbeURL
		says      string // in the error
	}{
		{"OK", srv.URL + "/ok", false, false, false, ""},
		{"ErrUnready", srv.URL + "/down", true, true, false, "[-]leader failed: no leader known"},
		{"ErrNotFound", srv.URL + "/nope", true, true, false, "404"},
		{"ErrRedirect", srv.URL + "/moved", true, true, false, "302"},
		{"ErrRefused", "http://" + closed + "/readyz", true, false, false, "refused"},
		{"ErrHTTPS", "https://127.0.0.1:1/readyz", true, false, true, "http://"},
		{"ErrNoHost", "http:///readyz", true, false, true, "http://"},
		{"ErrGarbage", "::", true, false, true, "http://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := admin.Probe(context.Background(), tt.url)
			if (err != nil) != tt.err {
				t.Fatalf("Probe(%s): %v", tt.url, err)
			}
			if err == nil {
				return
			}
			if errors.Is(err, admin.ErrUnhealthy) != tt.unhealthy {
				t.Errorf("%v: ErrUnhealthy %v, want %v", err, !tt.unhealthy, tt.unhealthy)
			}
			if errors.Is(err, admin.ErrProbeURL) != tt.badURL {
				t.Errorf("%v: ErrProbeURL %v, want %v", err, !tt.badURL, tt.badURL)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("%v does not say %q", err, tt.says)
			}
		})
	}
}

// TestProbe_Bounded: a server that never answers holds the probe only as
// long as its context.
func TestProbe_Bounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan net.Conn, 1)
	go func() {
		if c, ok := <-accepted; ok {
			held <- c // open until the probe has returned: its end must be the context's
			cancel()  // the probe is waiting for an answer that never comes
		}
	}()
	err = admin.Probe(ctx, "http://"+ln.Addr().String()+"/readyz")
	select {
	case c := <-held:
		c.Close()
	default:
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Probe: %v, want context.Canceled", err)
	}
}

// TestProbe_IgnoresProxy: HTTP_PROXY pointing nowhere does not stop a
// probe of the loopback.
func TestProbe_IgnoresProxy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	t.Setenv("HTTP_PROXY", "http://"+closedPort(t))
	t.Setenv("NO_PROXY", "")
	if err := admin.Probe(context.Background(), srv.URL); err != nil {
		t.Error(err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

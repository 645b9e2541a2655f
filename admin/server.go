// Package admin is the central's admin listener: an HTTP server, apart from
// the agencies' port, for the operator and their tools. It serves
//
//	/             the live status page (one embedded file)
//	/status.json  the page's model: totals and one page of agencies
//	/metrics      Prometheus exposition of the central's registry
//	/livez        200 while the process serves (never asks the quorum)
//	/readyz       200 when every readiness check passes, else 503 naming
//	              the failing one; ?verbose lists each; /readyz/<check>
//
// and nothing else: only GET and HEAD, no bet, name or document ever, since
// package metrics never holds one. Probe is the other side: the server
// binary's -health mode.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lottery/logline"
	"lottery/metrics"
)

// Timeouts of the admin server. Its clients are a browser tab, Prometheus
// and health probes on a trusted network, all quick; the timeouts are
// there so that a stuck or hostile client cannot hold a connection (a
// slowloris on the headers, a reader that never reads) for long.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second // a scrape of a thousand agencies' series, slowly read
	IdleTimeout       = 60 * time.Second
	// MaxHeaderBytes: requests here are a path and a few headers.
	MaxHeaderBytes = 8 << 10
	// maxScrapesInFlight: more concurrent scrapes than this wait; a
	// scrape reads every agency's counters and allocates their series.
	maxScrapesInFlight = 4
)

// Errors of Server.
var (
	ErrStarted = errors.New("admin: already started")
	ErrConfig  = errors.New("admin: bad configuration")
)

// Config is what the admin listener serves.
type Config struct {
	// Addr is where it listens (host:port; ParseAddress reads
	// ADMIN_ADDRESS). Empty: DefaultAddress.
	Addr string
	// Registry is what /metrics exposes (metrics.NewRegistry). Nil:
	// /metrics answers 404.
	Registry prometheus.Gatherer
	// Status returns the status page's model (metrics.Lottery.Snapshot).
	// Nil: / and /status.json answer 404.
	Status func(page, perPage int) metrics.Status
	// Ready are /readyz's checks, in the order they are listed. Names are
	// distinct, lowercase letters, digits, '_' and '-'.
	Ready []Check
	// Log gets the listener's contract lines. Nil: nothing is logged.
	Log *slog.Logger
}

// Server is the admin listener. Create it with New, then Start; Shutdown
// stops it.
type Server struct {
	cfg Config
	log *slog.Logger
	srv *http.Server

	mu       sync.Mutex // guards ln and the started state below
	ln       net.Listener
	started  bool
	served   chan struct{} // closed when Serve has returned
	shutOnce sync.Once
	shutErr  error
}

// New checks cfg and returns a server that does not listen yet.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddress
	}
	seen := map[string]bool{}
	for _, c := range cfg.Ready {
		if !validName(c.Name) || seen[c.Name] || c.Check == nil {
			return nil, fmt.Errorf("%w: readiness check %q: want a distinct name of [a-z0-9_-] and a function", ErrConfig, c.Name)
		}
		seen[c.Name] = true
	}
	cfg.Ready = append([]Check(nil), cfg.Ready...)
	s := &Server{cfg: cfg, log: cfg.Log, served: make(chan struct{})}
	if s.log == nil {
		s.log = logline.Discard()
	}
	s.srv = &http.Server{
		Handler:           secure(s.routes()),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          log.New(httpErrors{s.log}, "", 0),
	}
	return s, nil
}

// routes maps the endpoints. A "GET" pattern also takes HEAD; any other
// method gets 405, any other path 404.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	if s.cfg.Status != nil {
		mux.HandleFunc("GET /{$}", servePage)
		mux.HandleFunc("GET /status.json", s.serveStatus)
	}
	if s.cfg.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{
			MaxRequestsInFlight: maxScrapesInFlight,
			ErrorLog:            promErrors{s.log},
		}))
	}
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		serveChecks(w, r, "livez", []Check{{Name: "ping", Check: func() error { return nil }}})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		serveChecks(w, r, "readyz", s.cfg.Ready)
	})
	mux.HandleFunc("GET /readyz/{check}", func(w http.ResponseWriter, r *http.Request) {
		serveCheck(w, r, s.cfg.Ready)
	})
	return mux
}

// secure sets the headers every answer carries: nothing here is to be
// cached (it is all live state), sniffed into another type, framed or
// given a referrer; and a policy that lets an answer other than the page
// load nothing at all.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

func servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Security-Policy", pagePolicy)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(statusPage)
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	page, perPage := ParsePage(r.URL.Query())
	b, err := json.Marshal(s.cfg.Status(page, perPage))
	if err != nil { // a Status is plain data: cannot happen
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// Start listens on the configured address and serves in a goroutine that
// Shutdown ends. It listens before that goroutine starts, so an address in
// use is reported here, at once. It logs `action: admin` with its result
// and the address it listens on (the real port when it was 0).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.log.Error(logline.Admin, logline.Failed, "addr", s.cfg.Addr, "error", err)
		return fmt.Errorf("admin: %w", err)
	}
	s.ln, s.started = ln, true
	s.log.Info(logline.Admin, logline.OK, "addr", ln.Addr().String())
	go func() {
		defer close(s.served)
		s.srv.Serve(ln) // ErrServerClosed after Shutdown: nothing to report
	}()
	return nil
}

// Addr returns the address the server listens on, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown closes the listener, lets the requests in progress finish and
// waits for the serving goroutine, as net/http's Shutdown does, and like it
// returns ctx's error when ctx ends first; the connections still open are
// then closed. It logs `action: shutdown | result: in_progress | resource:
// admin_listener`. Later calls return the first one's result; without
// Start it does nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	s.shutOnce.Do(func() {
		s.log.Info(logline.Shutdown, logline.Progress, "resource", "admin_listener")
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
			s.shutErr = fmt.Errorf("admin: shutdown: %w", err)
		}
		<-s.served
	})
	return s.shutErr
}

// httpErrors turns net/http's error log (a client's malformed request, a
// failed accept) into contract lines at DEBUG: they say something about a
// client, not about the central.
type httpErrors struct{ log *slog.Logger }

func (e httpErrors) Write(p []byte) (int, error) {
	e.log.Debug(logline.AdminHTTP, logline.Failed, "error", string(trimNewline(p)))
	return len(p), nil
}

// promErrors is promhttp's error log: a collector that failed during a
// scrape, which should never happen (ours reads atomics).
type promErrors struct{ log *slog.Logger }

func (e promErrors) Println(v ...any) {
	e.log.Warn(logline.Metrics, logline.Failed, "error", fmt.Sprint(v...))
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

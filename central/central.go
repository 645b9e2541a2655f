// Package central is the National Lottery's central office: a TCP server
// that takes agencies concurrently (one session per connection), stores
// their bets in its ledger (lottery.Ledger), waits until every agency has
// finished, runs the draw once and answers each agency its own winners.
// docs/concurrency.md explains which primitive protects what.
package central

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"lottery"
	"lottery/audit"
	"lottery/internal/fsutil"
	"lottery/logline"
	"lottery/metrics"
	"lottery/protocol"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("central: server closed")

// Config is the central's behaviour. Zero durations and limits take the
// defaults below.
type Config struct {
	// Agencies is how many distinct agencies (numbered 1..Agencies) must
	// finish before the draw.
	Agencies int
	// MaxConnections caps concurrent connections; extra ones get an error
	// answer and are closed.
	MaxConnections int
	// IdleTimeout closes a connection that sends no whole frame for that
	// long: idle peers and slowloris trickles alike. A connection waiting
	// for the draw is not idle.
	IdleTimeout time.Duration
	// WriteTimeout bounds every write to a peer.
	WriteTimeout time.Duration
	// Window is how many requests of one connection may be in flight
	// (read but not yet answered); it lets an agency pipeline batches.
	Window int
	// TLS, when set, makes every agency prove who it is: a connection
	// must complete a TLS handshake with a client certificate of the
	// lottery's CA (pki.ServerConfig) that names its agency, and may then
	// act only as that agency. A plain-text peer may only echo. Nil is the
	// open mode of the course's bare exercises: the Hello is believed.
	TLS *tls.Config
	// HandshakeTimeout bounds the time from accept to a completed TLS
	// handshake.
	HandshakeTimeout time.Duration
	// MaxUnauthenticated caps the connections that have not proven an
	// agency yet (in handshake, or plain text); when it is reached the
	// oldest of them is closed to admit the new one. Zero:
	// UnauthenticatedLimit(MaxConnections).
	MaxUnauthenticated int
	// MaxInFlightBytes caps the batch bytes read from all agencies but not
	// answered yet (see budget). Zero: DefaultMaxInFlightBytes.
	MaxInFlightBytes int64
	// Log, when set, is the audit log's signer: acks carry receipts to the
	// agencies that ask for them, and the draw is a signed statement
	// (docs/audit.md), written to StatementFile if it is set. Nil: no
	// receipts, no statement.
	Log           *Log
	StatementFile string
	// Secret, when set, is the committed mode's secret (docs/audit.md):
	// its commitment is leaf 1 of the ledger's audit log (the caller
	// stores it before serving: Committer), and the draw's number is
	// audit.DrawNumber(Secret, the final root) instead of the course's,
	// revealed in the statement.
	Secret []byte
	// Metrics, if set, counts what the central does for the operator
	// (the admin listener's /metrics and status page): connections,
	// handshakes, agencies, batches by result, ack latency, the in-flight
	// budget, the draw. Nil: nothing is counted.
	Metrics *metrics.Lottery
}

// Cluster is a ledger that is one node of a replicated group (package
// replica). A central whose ledger is one takes agencies only while its
// node leads, and the draw comes from the replicated log (AgencyFinished,
// DrawCommitted, on every node) instead of from its own sessions.
type Cluster interface {
	lottery.Ledger
	// Leader reports whether this node leads; if not, hint is the
	// agencies' address of the node that does ("" while none is known).
	Leader() (leads bool, hint string)
}

// Defaults of Config.
const (
	DefaultMaxConnections = 2048
	DefaultIdleTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultWindow         = 64
	// DefaultHandshakeTimeout is far above a handshake on any real network
	// (a few round trips) and short enough that a stranger's silent
	// connection is dropped soon.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxInFlightBytes is two of the store's largest group commits:
	// one being made durable, the next one gathering. More only waits in
	// line (latency); less leaves the disk idle between groups.
	DefaultMaxInFlightBytes = 8 << 20
)

// UnauthenticatedLimit is the default of MaxUnauthenticated for a given
// connection limit: an eighth of it, so strangers can never fill the central
// and real agencies, which authenticate in milliseconds, always find room;
// but never fewer than 16 (or all of a smaller limit), so a handful of
// agencies connecting at once never evict each other.
func UnauthenticatedLimit(maxConns int) int {
	return max(maxConns/8, min(maxConns, 16))
}

func (c Config) withDefaults() Config {
	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxUnauthenticated <= 0 {
		c.MaxUnauthenticated = UnauthenticatedLimit(c.MaxConnections)
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	return c
}

// Central serves agencies. Create it with New, run Serve, stop it with
// Shutdown; the caller closes the store afterwards.
type Central struct {
	cfg    Config
	ledger lottery.Ledger
	// cluster is the ledger as a node of a replicated group; nil for the
	// single central.
	cluster Cluster
	log     *slog.Logger
	draw    *Draw
	// inFlight is the central-wide budget of batch bytes in flight, and
	// uploading counts the agencies connected that have not finished:
	// each is granted its share of the budget in every ack (grant).
	inFlight  *budget
	uploading atomic.Int32

	// quit is closed by Shutdown (or Close): no new work is taken, and
	// every wait that is not bounded by itself (the draw, a takeover,
	// accept back-off) watches it.
	quit chan struct{}
	// recovered is closed once the agencies the ledger held as finished
	// at start are counted: a Hello waits for it.
	recovered chan struct{}
	quitOnce  sync.Once
	// kill is closed by Close, the hard stop: the waits that are bounded
	// only by the disk (a commit) watch it, so a hung disk cannot hold a
	// session.
	kill     chan struct{}
	killOnce sync.Once

	// mu guards listeners and sessions, the resources Shutdown releases,
	// the unauthenticated connections (oldest first: silent ones, and
	// those that sent something), the one session of each agency, and the
	// eviction log's rate.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	silent    *list.List
	talking   *list.List
	evictions rateLog
	agencies  map[uint32]*session
	// agencyConns counts the authenticated connections of each agency.
	agencyConns map[uint32]int
	// wg counts session goroutines, so Shutdown can wait for all of them.
	wg sync.WaitGroup

	drawOnce sync.Once
}

// New returns a central storing into ledger, without waiting for the
// ledger to be ready: agencies are welcomed once it is. A ledger that is a
// Cluster makes the central one node of a replicated group. If the ledger then
// says every agency had already finished (a restart after the draw), the
// draw is run again from the stored bets, giving the same winners.
func New(cfg Config, ledger lottery.Ledger, log *slog.Logger) (*Central, error) {
	if cfg.Agencies < 1 {
		return nil, fmt.Errorf("central: agencies must be at least 1, got %d", cfg.Agencies)
	}
	if s := cfg.Secret; s != nil {
		_, commits := ledger.(Committer)
		switch {
		case cfg.Log == nil:
			return nil, errors.New("central: the committed mode reveals its secret in the signed statement: it needs the audit log's key")
		case !commits:
			return nil, errors.New("central: the committed mode is not offered by a replicated central")
		case len(s) < audit.MinSecretSize || len(s) > audit.MaxSecretSize:
			return nil, fmt.Errorf("central: a secret of %d bytes (%d to %d)", len(s), audit.MinSecretSize, audit.MaxSecretSize)
		}
	}
	c := &Central{
		cfg: cfg.withDefaults(), ledger: ledger, log: log,
		inFlight:    newBudget(cfg.withDefaults().MaxInFlightBytes),
		draw:        NewDraw(cfg.Agencies),
		quit:        make(chan struct{}),
		recovered:   make(chan struct{}),
		kill:        make(chan struct{}),
		listeners:   make(map[net.Listener]struct{}),
		sessions:    make(map[*session]struct{}),
		silent:      list.New(),
		talking:     list.New(),
		agencies:    make(map[uint32]*session),
		agencyConns: make(map[uint32]int),
	}
	c.cluster, _ = ledger.(Cluster)
	c.instrument()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.recoverFinished()
	}()
	return c, nil
}

// recoverFinished counts the agencies the ledger holds as finished once it
// is ready, and recovers the draw if they all had.
func (c *Central) recoverFinished() {
	select {
	case <-c.ledger.Ready():
	case <-c.quit:
		return
	}
	for _, a := range c.ledger.Finished() {
		c.draw.Arrive(a)
	}
	complete := c.draw.Complete()
	// Only now may an agency say Hello: one that finished first would be
	// counted among those the ledger held, and the first draw logged as a
	// recovered one.
	close(c.recovered)
	if complete {
		c.holdDraw(logline.RecoverDraw)
	}
}

// holdDraw computes and publishes the winners, once, logging it as action:
// "sorteo" for the draw itself, "recuperar_sorteo" when a restarted central
// recomputes a draw that had already happened (the same winners: the file
// cannot change after the draw), so the log shows one sorteo per draw. It
// reads the file only once the ledger has verified it; a central that
// stops first holds no draw.
func (c *Central) holdDraw(action string) {
	c.drawOnce.Do(func() {
		select {
		case <-c.ledger.Verified():
		case <-c.quit:
			return
		}
		number, err := c.drawNumber()
		var winners map[uint32][]string
		if err == nil {
			winners, err = FindWinnersOf(c.ledger, number)
		}
		if err != nil {
			// The stored file cannot be read back: there is no honest answer,
			// so queries get an error rather than a wrong list.
			c.log.Error(action, logline.Failed, "error", err)
			c.draw.Publish(nil, nil, 0, lottery.Errorf(lottery.EInternal, "the draw failed: %v", err))
			return
		}
		total := 0
		for _, w := range winners {
			total += len(w)
		}
		size, root := c.ledger.Tree()
		statement := c.signDraw(winners, number)
		c.log.Info(action, logline.OK, "ganadores", total, "arbol", size, "raiz", root.String(), "numero", number)
		c.cfg.Metrics.DrawCompleted(time.Now(), winnerCounts(winners))
		c.draw.Publish(winners, statement, size, nil)
		c.keepStatement(statement)
	})
}

// signDraw signs the draw statement when the central has a log; nil
// otherwise, or if it could not (said in a log line: agencies that check
// the audit log will refuse the draw).
func (c *Central) signDraw(winners map[uint32][]string, number int) []byte {
	if c.cfg.Log == nil {
		return nil
	}
	msg, _, err := c.drawStatement(winners, number)
	if err != nil {
		c.log.Error(logline.DrawStatement, logline.Failed, "error", fmt.Errorf("the draw statement: %w", err))
		return nil
	}
	return msg
}

// keepStatement writes the signed statement to Config.StatementFile, for
// auditors, once the agencies can have it: the file is not what they
// wait for, and a central that stops before it is written signs the same
// statement again at its next start (recuperar_sorteo).
func (c *Central) keepStatement(msg []byte) {
	if msg == nil || c.cfg.StatementFile == "" {
		return
	}
	if err := fsutil.WriteFileSynced(c.cfg.StatementFile, msg, 0o644); err != nil {
		c.log.Error(logline.DrawStatement, logline.Failed, "archivo", c.cfg.StatementFile, "error", fmt.Errorf("the draw statement file: %w", err))
	}
}

// grant is how many batches each uploading agency may have in flight: its
// share of the in-flight budget, counting every batch as a whole frame,
// between 1 and the connection's window. With many agencies the share is
// small and their acks come back fast; a lone agency gets its whole
// window.
func (c *Central) grant() uint16 {
	share := c.cfg.MaxInFlightBytes / protocol.MaxFrameSize / int64(max(c.uploading.Load(), 1))
	return uint16(min(max(share, 1), int64(c.cfg.Window), 65535))
}

// AgencyFinished is the replicated log's "finished" of an agency, applied
// on this node (Hooks.Finished of package replica).
func (c *Central) AgencyFinished(agency uint32) { c.draw.Arrive(agency) }

// DrawCommitted is the replicated log's draw entry, applied on this node:
// every node draws from its own, identical, file. A node that already drew
// (or recovered the draw at its start) does nothing.
func (c *Central) DrawCommitted() {
	if c.draw.Complete() {
		c.holdDraw(logline.Draw)
	}
}

// DrawRecovered is told when this node's files were replaced by a
// snapshot of its group: if every agency had finished, the draw is
// recovered from the file (recuperar_sorteo), as after a restart; its
// entry may be in the part of the log the snapshot replaced.
func (c *Central) DrawRecovered() {
	if c.draw.Complete() {
		c.holdDraw(logline.RecoverDraw)
	}
}

// Leading is told when this node starts or stops leading its group. A node
// that stops drops every connection: its agencies reconnect to the new
// leader and resume from its last batch, and none waits on a node that may
// be cut off from the draw.
func (c *Central) Leading(leads bool) {
	if leads {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.sessions {
		s.evicted.Store(true)
		s.raw.Close()
	}
	if n := len(c.sessions); n > 0 {
		c.log.Info(logline.Leader, logline.Progress, "estado", "seguidor", "conexiones_cerradas", n)
	}
}

// Serve accepts connections on ln until Shutdown, one goroutine per
// connection. It always returns a non-nil error: ErrServerClosed after
// Shutdown.
func (c *Central) Serve(ln net.Listener) error {
	c.mu.Lock()
	select {
	case <-c.quit:
		c.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	default:
	}
	c.listeners[ln] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.listeners, ln)
		c.mu.Unlock()
	}()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-c.quit:
				return ErrServerClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors and the like: back off and retry, as
			// net/http does, instead of giving up on every agency.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			c.log.Warn(logline.Accept, logline.Failed, "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-c.quit:
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		c.startSession(conn)
	}
}

func (c *Central) startSession(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.quit:
		c.cfg.Metrics.ConnectionRefused(metrics.ReasonShuttingDown)
		conn.Close()
		return
	default:
	}
	c.wg.Add(1)
	if len(c.sessions) >= c.cfg.MaxConnections {
		c.cfg.Metrics.ConnectionRefused(metrics.ReasonTooManyConnections)
		go func() {
			defer c.wg.Done()
			c.refuse(conn, lottery.ETooManyConns, "connection limit reached")
		}()
		return
	}
	s := newSession(c, conn)
	c.sessions[s] = struct{}{}
	c.cfg.Metrics.ConnectionOpened()
	c.admit(s)
	go func() {
		defer c.wg.Done()
		s.run()
		c.mu.Lock()
		delete(c.sessions, s)
		c.cfg.Metrics.ConnectionClosed()
		c.release(s)
		c.mu.Unlock()
	}()
}

// refuse answers an Error and closes a connection the central will not serve.
func (c *Central) refuse(conn net.Conn, code lottery.Code, msg string) {
	c.log.Warn(logline.Connection, logline.Failed, "ip", remoteIP(conn), "error", code.String())
	conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	if writeError(conn, code, msg) == nil {
		closeGracefully(conn, conn)
		return
	}
	conn.Close()
}

// Shutdown stops the central gracefully: it closes the listeners, stops
// reading new requests, lets every request already read finish (a batch is
// stored and acked, or was never submitted), answers waiting winners
// queries with a shutting-down error, closes every connection and waits for
// every session goroutine. Like net/http's Shutdown it returns when ctx
// ends, whatever is left: it then calls Close, so the remaining goroutines
// return promptly without it, and returns ctx's error.
func (c *Central) Shutdown(ctx context.Context) error {
	c.quitOnce.Do(func() { close(c.quit) })
	c.mu.Lock()
	for ln := range c.listeners {
		c.log.Info(logline.Shutdown, logline.Progress, "resource", "listener", "addr", ln.Addr().String())
		ln.Close()
	}
	sessions := len(c.sessions)
	for s := range c.sessions {
		s.stopReading()
	}
	c.mu.Unlock()
	c.log.Info(logline.Shutdown, logline.Progress, "resource", "sessions", "open", sessions)
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		c.Close()
		return ctx.Err()
	}
}

// Close stops the central at once, the hard stop: it closes the listeners
// and every connection and releases every wait, even one for a commit on a
// hung disk (that batch is then answered by nobody: its agency resends it).
// It does not wait for the session goroutines, which return promptly.
func (c *Central) Close() error {
	c.quitOnce.Do(func() { close(c.quit) })
	c.killOnce.Do(func() { close(c.kill) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for ln := range c.listeners {
		ln.Close()
	}
	for s := range c.sessions {
		s.raw.Close()
	}
	return nil
}

func remoteIP(conn net.Conn) string {
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return conn.RemoteAddr().String()
}

// Command server is the central of the Lotería Nacional. It reads
// ./config.ini ([DEFAULT] section; environment variables of the same names
// override it), listens for agencies, stores their bets and runs the draw.
// It stops gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"lottery"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"lottery/central"
	"lottery/config"
	"lottery/logline"
	"lottery/pki"
	"lottery/replica"
	"lottery/storage"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the central could not run or stopped on a failure
	exitConfig = 2 // bad configuration: nothing was started
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usage = `usage: server [-check | -repair | -health URL]

Runs the central of the Lotería Nacional with ./config.ini ([DEFAULT];
environment variables of the same names override it). With no flag it
serves agencies until SIGTERM or SIGINT.

  -check    verify the bets file (STORAGE_FILEPATH) against its journal,
            print what was found and exit: 0 if they prove each other
            (an unacknowledged tail aside), 1 on damage
  -repair   keep the longest verified prefix of both files, moving every
            byte removed to <file>.broken-<time>; adopt a bets file that
            has no journal (the course's Python format); then exit
  -health URL
            GET URL (a running central's admin listener, e.g.
            http://127.0.0.1:9090/readyz) and exit 0 if it answers 200,
            1 otherwise, 2 for a URL that is not http://host…: the
            health check of an image with no curl
  -h        print this help

docs/durability.md explains the journal, recovery and repair;
docs/operations.md the admin listener (ADMIN_ADDRESS), its metrics,
health checks and status page.
`

// dispatch runs the central, or the check or repair asked for by args.
func dispatch(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	check := fs.Bool("check", false, "")
	repair := fs.Bool("repair", false, "")
	health := fs.String("health", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "server: %v\n%s", err, usage)
		return exitConfig
	}
	if fs.NArg() > 0 || *check && *repair || (*check || *repair) && flagSet(fs, "health") {
		fmt.Fprintf(stderr, "server: unexpected arguments %q\n%s", args, usage)
		return exitConfig
	}
	switch {
	case flagSet(fs, "health"):
		return probe(*health, stdout, stderr)
	case *check:
		return checkStore(stdout, lookup, false)
	case *repair:
		return checkStore(stdout, lookup, true)
	}
	return run(stdout, lookup)
}

// checkStore runs storage.Check or storage.Repair on the configured bets
// file and prints what it found in log lines.
func checkStore(out io.Writer, lookup func(string) (string, bool), repair bool) int {
	log := logline.New(out, new(slog.LevelVar))
	cfg, err := loadConfig("config.ini", lookup)
	if err != nil {
		log.Error(logline.Config, logline.Failed, "error", err)
		return exitConfig
	}
	action, rep := logline.Verify, storage.Report{}
	if repair {
		action = logline.Repair
		rep, err = storage.Repair(cfg.Storage, time.Now())
	} else {
		rep, err = storage.Check(cfg.Storage)
	}
	var damage *storage.DamageError
	if err != nil && !errors.As(err, &damage) {
		log.Error(action, logline.Failed, "storage_filepath", cfg.Storage, "error", err)
		return exitFailed
	}
	if damage == nil {
		damage = rep.Damage
	}
	line := func(result slog.Attr, extra ...any) []any {
		return append([]any{result, "storage_filepath", cfg.Storage, "bets_bytes", rep.BetsSize, "journal_bytes", rep.JournalSize,
			"apuestas", rep.Bets, "batches", rep.Batches, "agencias_finalizadas", rep.Finished,
			"verified_bets_bytes", rep.KeepBets, "verified_journal_bytes", rep.KeepJournal}, extra...)
	}
	switch {
	case repair && rep.Repaired:
		log.Info(action, line(logline.OK, "adoptadas", rep.Adopted, "moved_bets_bytes", rep.MovedBets, "broken_bets", rep.BrokenBets,
			"moved_journal_bytes", rep.MovedJournal, "broken_journal", rep.BrokenJournal, "broken_tree", rep.BrokenTree)...)
	case rep.NoJournal:
		log.Error(action, line(logline.Failed, "error", "no journal: run -repair to adopt the file's complete rows")...)
		return exitFailed
	case damage != nil && (!repair || err != nil):
		log.Error(action, line(logline.Failed, "file", damage.File, "offset", damage.Offset, "error", damage.What)...)
		return exitFailed
	default:
		log.Info(action, line(logline.OK, "tail_bets_bytes", rep.BetsSize-rep.KeepBets, "tail_journal_bytes", rep.JournalSize-rep.KeepJournal)...)
	}
	return exitOK
}

func run(out io.Writer, lookup func(string) (string, bool)) int {
	// Catch the signals first: one that arrives during start-up (recovery,
	// a recomputed draw) is a graceful stop too, handled once serving.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)
	level := new(slog.LevelVar)
	log := logline.New(out, level)
	cfg, err := loadConfig("config.ini", lookup)
	if err != nil {
		log.Error(logline.Config, logline.Failed, "error", err)
		return exitConfig
	}
	level.Set(cfg.Level)
	revoked := new(pki.Revocations)
	if cfg.TLS.Enabled {
		if cfg.Central.TLS, err = loadTLS(cfg.TLS, revoked); err != nil {
			log.Error(logline.Config, logline.Failed, "error", err)
			return exitConfig
		}
	}
	if cfg.Central.Log, err = cfg.loadLog(); err != nil {
		log.Error(logline.Config, logline.Failed, "error", err)
		return exitConfig
	}
	log.Info(logline.Config, logline.OK, "port", cfg.Port, "listen_backlog", cfg.Backlog, "logging_level", logline.LevelName(cfg.Level),
		"ip", cfg.IP, "agencies", cfg.Central.Agencies, "storage_filepath", cfg.Storage, "storage_nosync", cfg.NoSync,
		"max_connections", cfg.Central.MaxConnections, "max_unauthenticated", cfg.Central.MaxUnauthenticated,
		"idle_timeout", cfg.Central.IdleTimeout, "write_timeout", cfg.Central.WriteTimeout,
		"handshake_timeout", cfg.Central.HandshakeTimeout, "max_inflight_bytes", cfg.Central.MaxInFlightBytes, "shutdown_timeout", cfg.ShutdownTimeout,
		"tls", config.OnOff(cfg.TLS.Enabled), "tls_cert", cfg.TLS.Cert, "tls_key", cfg.TLS.Key, "tls_client_ca", cfg.TLS.ClientCA,
		"tls_crl", cfg.TLS.CRL, "revocados", revoked.Current().Len(), "node_name", cfg.Node, "cluster_nodes", clusterLine(cfg.Cluster),
		"audit", config.OnOff(cfg.Central.Log != nil), "log_key", cfg.LogKey, "log_origin", logOrigin(cfg.Central.Log),
		"draw_number", cfg.DrawNumber, "admin_address", adminLine(cfg))
	if !cfg.TLS.Enabled {
		log.Warn(logline.TLS, logline.Progress, "tls", "off", "warning",
			"TLS=off: the lottery is open to anyone: whoever reaches the port can act as any agency, store bets in its name and read its winners")
	}
	config.LogWarnings(log, cfg.Warnings)
	if cfg.DrawNumber == drawCommitted && cfg.Central.Log == nil {
		log.Error(logline.Config, logline.Failed, "error", "DRAW_NUMBER=committed reveals its secret in the signed statement: it needs LOG_KEY")
		return exitConfig
	}
	if cfg.Central.Log == nil && cfg.TLS.Enabled {
		log.Warn(logline.Config, logline.Progress, "key", "LOG_KEY", "env", "LOG_KEY", "warning",
			"no audit log key at "+cfg.LogKey+": acks carry no receipts and the draw is not signed, so no agency can check them")
	}
	o := newOps(&cfg, log)

	store, rec, err := storage.Open(cfg.Storage, storageOptions(cfg))
	switch {
	case logDamage(log, err):
		return exitFailed
	case err != nil:
		log.Error(logline.Recover, logline.Failed, "storage_filepath", cfg.Storage, "error", err)
		return exitFailed
	}
	log.Info(logline.Recover, logline.OK, "apuestas", rec.Bets, "batches", rec.Batches, "agencias_finalizadas", rec.Finished,
		"bytes_descartados", rec.CutBetsBytes, "journal_bytes_descartados", rec.CutJournal, "grupo_deshecho", rec.RolledBack,
		"bytes_leidos", rec.ReadBytes)
	if _, committed := store.Commitment(); committed && cfg.DrawNumber != drawCommitted {
		log.Error(logline.Commitment, logline.Failed, "storage_filepath", cfg.Storage,
			"error", "the journal commits to a draw's secret: start the central with DRAW_NUMBER=committed")
		store.Close()
		return exitFailed
	}
	if cfg.DrawNumber == drawCommitted {
		if cfg.Central.Secret, err = commitDraw(cfg.Storage, store, log); err != nil {
			log.Error(logline.Commitment, logline.Failed, "storage_filepath", cfg.Storage, "error", err)
			store.Close()
			return exitFailed
		}
	}
	code, store := serve(cfg, store, log, signals, revoked, o)
	if err := store.Close(); err != nil {
		log.Error(logline.Shutdown, logline.Failed, "resource", "bets_file", "error", err)
		code = exitFailed
	} else {
		log.Info(logline.Shutdown, logline.Progress, "resource", "bets_file", "path", cfg.Storage)
	}
	o.shutdown()
	if code == exitOK {
		log.Info(logline.Shutdown, logline.OK)
	}
	return code
}

// serve runs the central until a signal, a fatal storage failure or a
// listener failure, then shuts it down. It returns the store to close: a
// node of a group may have replaced its own with a snapshot.
func serve(cfg Config, store *storage.Store, log *slog.Logger, signals <-chan os.Signal, revoked *pki.Revocations, o *ops) (int, *storage.Store) {
	sv := &server{cfg: cfg, log: log, store: store, revoked: revoked, ops: o}
	if code, ok := sv.start(); !ok {
		return code, store
	}
	stopWatch := watchVerified(store, log)
	defer stopWatch()
	code, serveErr := sv.wait(signals)
	return sv.stop(code, serveErr)
}

// server is the central's process once configured: its ledger (the store,
// or a node of a group over it), the central and its listener.
type server struct {
	cfg     Config
	log     *slog.Logger
	store   *storage.Store
	revoked *pki.Revocations
	node    *replica.Replica // nil: the single central
	c       *central.Central
	served  chan error // Serve's return
	ops     *ops       // the admin listener and the instruments
}

// start builds the central over its ledger, listens, joins the group of a
// replicated central, and serves. On failure it logs why and returns the
// exit code.
func (sv *server) start() (int, bool) {
	cfg, log := sv.cfg, sv.log
	if err := sv.ops.start(sv.store); err != nil {
		return exitFailed, false // logged by the admin listener
	}
	var ledger lottery.Ledger = sv.store
	if cfg.Cluster != nil {
		var err error
		if sv.node, err = newNode(cfg, sv.store, log, sv.revoked); err != nil {
			log.Error(logline.Config, logline.Failed, "error", err)
			return exitConfig, false
		}
		ledger = sv.node // a central.Cluster: the central serves as its node
	}
	c, err := central.New(cfg.Central, ledger, log)
	if err != nil {
		log.Error(logline.Config, logline.Failed, "error", err)
		return exitConfig, false
	}
	ln, err := listen(cfg.IP, cfg.Port, cfg.Backlog)
	if err != nil {
		log.Error(logline.Listen, logline.Failed, "port", cfg.Port, "error", err)
		c.Close()
		return exitFailed, false
	}
	log.Info(logline.Listen, logline.OK, "addr", ln.Addr().String())
	if sv.node != nil {
		if err := sv.node.Start(c); err != nil {
			log.Error(logline.Replica, logline.Failed, "nodo", cfg.Node, "error", err)
			ln.Close()
			c.Close()
			return exitFailed, false
		}
		log.Info(logline.Replica, logline.OK, "nodo", cfg.Node, "raft_addr", sv.node.BindAddr(), "nodos", len(cfg.Cluster))
		sv.ops.joined(sv.node)
	}
	sv.c, sv.served = c, make(chan error, 1)
	go func() { sv.served <- c.Serve(ln) }()
	return exitOK, true
}

// wait serves until a signal (SIGHUP rereads the revocation list), a
// failure of the store or the node, or of the listener, and returns the
// exit code so far and Serve's error if it returned.
func (sv *server) wait(signals <-chan os.Signal) (int, error) {
	log := sv.log
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				reloadRevocations(sv.cfg, sv.c, log, sv.revoked)
				continue
			}
			log.Info(logline.Shutdown, logline.Progress, "signal", sig.String())
			return exitOK, nil
		case <-failed(sv.store, sv.node):
			err := sv.store.Err()
			if sv.node != nil {
				err = sv.node.Err()
			}
			// Damage the background verification found is refused as at
			// start: the same line, no draw, and nothing more written.
			cause := "storage"
			if logDamage(log, err) {
				cause = "damage"
			}
			log.Error(logline.Shutdown, logline.Failed, "cause", cause, "error", err)
			return exitFailed, nil
		case err := <-sv.served:
			log.Error(logline.Shutdown, logline.Failed, "cause", "listener", "error", err)
			return exitFailed, err
		}
	}
}

// stop shuts the central down within SHUTDOWN_TIMEOUT, then the node of a
// group, and returns the exit code and the store to close.
func (sv *server) stop(code int, serveErr error) (int, *storage.Store) {
	log := sv.log
	ctx, cancel := context.WithTimeout(context.Background(), sv.cfg.ShutdownTimeout)
	defer cancel()
	if err := sv.c.Shutdown(ctx); err != nil {
		log.Warn(logline.Shutdown, logline.Progress, "resource", "sessions", "forced", true, "error", err)
	}
	if serveErr == nil {
		serveErr = <-sv.served
	}
	if !errors.Is(serveErr, central.ErrServerClosed) && code == exitOK {
		log.Error(logline.Shutdown, logline.Failed, "resource", "listener", "error", serveErr)
		code = exitFailed
	}
	log.Info(logline.Shutdown, logline.Progress, "resource", "sessions", "closed", true)
	if sv.node == nil {
		return code, sv.store
	}
	// Raft stops first: no entry is applied after, and the store it leaves
	// (a snapshot may have replaced the first one) is the one to close.
	if err := sv.node.Close(); err != nil {
		log.Warn(logline.Shutdown, logline.Progress, "resource", "raft", "error", err)
	} else {
		log.Info(logline.Shutdown, logline.Progress, "resource", "raft")
	}
	return code, sv.node.Store()
}

// watchVerified logs the end of the store's background verification
// (action verificar), if it ends before the central stops; damage is
// logged by the caller, from Failed. The returned func stops the watch
// and waits for it.
func watchVerified(store *storage.Store, log *slog.Logger) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(exited)
		select {
		case <-store.Verified():
			log.Info(logline.Verify, logline.OK, "origen", "inicio", "segundos", fmt.Sprintf("%.3f", time.Since(start).Seconds()))
		case <-store.Failed():
		case <-done:
		}
	}()
	return func() { close(done); <-exited }
}

// logOrigin names the audit log in the config line ("" without one).
func logOrigin(l *central.Log) string {
	if l == nil {
		return ""
	}
	return l.Origin()
}

// logDamage logs err as the refusal of damaged files, if it is one, and
// reports whether it was.
func logDamage(log *slog.Logger, err error) bool {
	var damage *storage.DamageError
	if !errors.As(err, &damage) {
		return false
	}
	// Nothing was changed: the operator decides (-check, -repair).
	log.Error(logline.Recover, logline.Failed, "file", damage.File, "offset", damage.Offset, "error", damage.What,
		"hint", "nothing was modified; see `server -check` and `server -repair`")
	return true
}

// newNode prepares this central's part in its group: its Raft state beside
// the bets file, its own certificate toward the other nodes.
func newNode(cfg Config, store *storage.Store, log *slog.Logger, revoked *pki.Revocations) (*replica.Replica, error) {
	peerTLS, err := replica.PeerTLS(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.ClientCA)
	if err != nil {
		return nil, err
	}
	bind := ""
	if cfg.IP != "" {
		bind = net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.Port+replica.RaftPortOffset))
	} else {
		bind = ":" + strconv.Itoa(cfg.Port+replica.RaftPortOffset)
	}
	return replica.New(replica.Config{
		Name: cfg.Node, Nodes: cfg.Cluster, Agencies: cfg.Central.Agencies,
		Dir: cfg.Storage + ".raft", BindAddr: bind, TLS: peerTLS, Revoked: revoked,
		Storage: storageOptions(cfg), Log: log, Metrics: cfg.Central.Metrics,
	}, cfg.Storage, store)
}

// failed is closed when the store in use fails for good: for a node of a
// group, when its store could not apply an entry (replica.Failed, which
// follows a store a snapshot put in place).
func failed(store *storage.Store, node *replica.Replica) <-chan struct{} {
	if node != nil {
		return node.Failed()
	}
	return store.Failed()
}

// reloadRevocations rereads TLS_CRL on SIGHUP, without a restart, and
// closes the connections of agencies whose certificate it now revokes. A
// list that cannot be read leaves the one in force.
func reloadRevocations(cfg Config, c *central.Central, log *slog.Logger, revoked *pki.Revocations) {
	switch {
	case !cfg.TLS.Enabled:
		log.Warn(logline.ReloadCRL, logline.Failed, "error", "TLS is off: there is nothing to revoke")
	case cfg.TLS.CRL == "":
		log.Warn(logline.ReloadCRL, logline.Failed, "error", "TLS_CRL is not set")
	default:
		if err := reloadCRL(cfg.TLS.CRL, revoked); err != nil {
			log.Error(logline.ReloadCRL, logline.Failed, "tls_crl", cfg.TLS.CRL, "error", err, "revocados", revoked.Current().Len())
			return
		}
		closed := c.DropRevoked(revoked.Current().Revoked)
		log.Info(logline.ReloadCRL, logline.OK, "tls_crl", cfg.TLS.CRL, "revocados", revoked.Current().Len(), "conexiones_cerradas", closed)
	}
}

// Command server is the central of the Lotería Nacional. It reads
// ./config.ini ([DEFAULT] section; environment variables of the same names
// override it), listens for agencies, stores their bets and runs the draw.
// It stops gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lottery/central"
	"lottery/config"
	"lottery/logline"
	"lottery/pki"
	"lottery/protocol"
	"lottery/replica"
	"lottery/storage"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the central could not run or stopped on a failure
	exitConfig = 2 // bad configuration: nothing was started
)

// Config is everything the central reads at start.
type Config struct {
	IP              string
	Port            int
	Backlog         int
	Level           slog.Level
	Storage         string
	NoSync          bool
	ShutdownTimeout time.Duration
	TLS             TLSConfig
	Central         central.Config
	// Node and Cluster make this central one node of a replicated group:
	// NODE_NAME and CLUSTER_NODES (empty: the single central).
	Node     string
	Cluster  []replica.Node
	Warnings []config.Warning // blank values, unknown keys: logged, not fatal
}

// TLSConfig says where the central's TLS material is. Secure by default:
// TLS is on unless TLS=off, and then the files must be there.
type TLSConfig struct {
	Enabled  bool
	Cert     string // TLS_CERT: the central's certificate
	Key      string // TLS_KEY: its private key
	ClientCA string // TLS_CLIENT_CA: the lottery's CA, which signs every agency
	CRL      string // TLS_CRL: revoked serial numbers (optional; reread on SIGHUP)
}

// defaultBacklog is the listen(2) backlog by default: the kernel's usual
// somaxconn, as Go's net.Listen uses. The course's 5 makes the kernel drop
// SYNs as soon as strangers open connections faster than the central
// accepts them, and a dropped SYN costs a real agency a one-second retry.
const defaultBacklog = 4096

// protocolFrame is the smallest MAX_INFLIGHT_BYTES: one whole batch frame.
const protocolFrame = protocol.MaxFrameSize

// minIdleTimeout is the smallest IDLE_TIMEOUT accepted: below it a loaded
// machine would drop real agencies between two frames.
const minIdleTimeout = 100 * time.Millisecond

// loadConfig reads ./config.ini overridden by the environment.
func loadConfig(path string, lookup func(string) (string, bool)) (Config, error) {
	file, err := config.ReadINI(path)
	if err != nil {
		return Config{}, err
	}
	v := config.New(file, func(k string) string { return k }, lookup)
	node := v.String("NODE_NAME", "")
	clusterSpec := v.String("CLUSTER_NODES", "")
	certFile, keyFile := pki.CentralCertFile, pki.CentralKeyFile
	if clusterSpec != "" && node != "" {
		certFile, keyFile = "central-"+node+".crt", "central-"+node+".key"
	}
	c := Config{
		Node:            node,
		IP:              v.String("SERVER_IP", ""),
		Port:            v.Int("SERVER_PORT", 12345, 1, 65535),
		Backlog:         v.Int("SERVER_LISTEN_BACKLOG", defaultBacklog, 1, 65535),
		Level:           v.Level("LOGGING_LEVEL", slog.LevelInfo),
		Storage:         v.String("STORAGE_FILEPATH", "./bets.csv"),
		NoSync:          v.Bool("STORAGE_NOSYNC", false),
		ShutdownTimeout: v.Duration("SHUTDOWN_TIMEOUT", 800*time.Millisecond),
		TLS: TLSConfig{
			Enabled:  v.Bool("TLS", true),
			Cert:     v.String("TLS_CERT", "./.pki/"+certFile),
			Key:      v.String("TLS_KEY", "./.pki/"+keyFile),
			ClientCA: v.String("TLS_CLIENT_CA", "./.pki/"+pki.CAFile),
			CRL:      v.String("TLS_CRL", ""),
		},
		Central: central.Config{
			Agencies:           v.Int("AGENCIES", 5, 1, math.MaxInt32),
			MaxConnections:     v.Int("MAX_CONNECTIONS", central.DefaultMaxConnections, 1, 1<<20),
			MaxUnauthenticated: v.Int("MAX_UNAUTHENTICATED", 0, 0, 1<<20),
			IdleTimeout:        v.Duration("IDLE_TIMEOUT", central.DefaultIdleTimeout),
			WriteTimeout:       v.Duration("WRITE_TIMEOUT", central.DefaultWriteTimeout),
			HandshakeTimeout:   v.Duration("HANDSHAKE_TIMEOUT", central.DefaultHandshakeTimeout),
			MaxInFlightBytes:   int64(v.Int("MAX_INFLIGHT_BYTES", central.DefaultMaxInFlightBytes, protocolFrame, 1<<30)),
		},
	}
	c.Warnings = v.Warnings()
	if err := v.Err(); err != nil {
		return c, err
	}
	if c.Central.MaxUnauthenticated == 0 {
		c.Central.MaxUnauthenticated = central.UnauthenticatedLimit(c.Central.MaxConnections)
	}
	if err := c.checkCluster(clusterSpec); err != nil {
		return c, err
	}
	switch {
	case c.Central.IdleTimeout < minIdleTimeout:
		return c, fmt.Errorf("IDLE_TIMEOUT: %v is below the floor of %v", c.Central.IdleTimeout, minIdleTimeout)
	case c.Central.WriteTimeout == 0 || c.Central.HandshakeTimeout == 0:
		return c, errors.New("WRITE_TIMEOUT and HANDSHAKE_TIMEOUT must be above 0")
	case c.Central.MaxUnauthenticated > c.Central.MaxConnections:
		return c, fmt.Errorf("MAX_UNAUTHENTICATED (%d) must not exceed MAX_CONNECTIONS (%d)", c.Central.MaxUnauthenticated, c.Central.MaxConnections)
	}
	return c, nil
}

// checkCluster reads CLUSTER_NODES and checks this node's place in it.
func (c *Config) checkCluster(spec string) error {
	if spec == "" {
		return nil
	}
	nodes, err := replica.ParseNodes(spec)
	if err != nil {
		return fmt.Errorf("CLUSTER_NODES: %w", err)
	}
	self, ok := replica.Node{}, false
	for _, n := range nodes {
		if n.Name == c.Node {
			self, ok = n, true
		}
	}
	switch {
	case c.Node == "":
		return errors.New("NODE_NAME: required with CLUSTER_NODES (which node of the group this is)")
	case !ok:
		return fmt.Errorf("NODE_NAME: %q is not in CLUSTER_NODES", c.Node)
	case !strings.HasSuffix(self.Addr, ":"+strconv.Itoa(c.Port)):
		return fmt.Errorf("CLUSTER_NODES: %s is at %s, but SERVER_PORT is %d", c.Node, self.Addr, c.Port)
	case !c.TLS.Enabled:
		return errors.New("CLUSTER_NODES: a replicated central needs TLS (the nodes prove who they are to each other with it); remove TLS=off")
	case c.Port+replica.RaftPortOffset > 65535:
		return fmt.Errorf("SERVER_PORT: %d leaves no room for the Raft port (+%d)", c.Port, replica.RaftPortOffset)
	}
	c.Cluster = nodes
	return nil
}

// loadTLS builds the central's TLS from the configured files and reads the
// revocation list into revoked. Every failure names the file and the key
// that points to it.
func loadTLS(c TLSConfig, revoked *pki.Revocations) (*tls.Config, error) {
	for _, f := range []struct{ key, path string }{{"TLS_CERT", c.Cert}, {"TLS_KEY", c.Key}, {"TLS_CLIENT_CA", c.ClientCA}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("%s: %w (create the lottery's keys with `bin/pki -out .pki`, or set TLS=off for the course's bare exercises)", f.key, err)
		}
	}
	if err := reloadCRL(c.CRL, revoked); err != nil {
		return nil, err
	}
	return pki.ServerConfig(c.Cert, c.Key, c.ClientCA, revoked)
}

// reloadCRL reads the revocation list (none when path is empty) and puts it
// in force; on error the list in force is kept.
func reloadCRL(path string, revoked *pki.Revocations) error {
	if path == "" {
		return nil
	}
	l, err := pki.ReadRevocationList(path)
	if err != nil {
		return fmt.Errorf("TLS_CRL: %w", err)
	}
	revoked.Set(l)
	return nil
}

// clusterLine writes CLUSTER_NODES back for the config line.
func clusterLine(nodes []replica.Node) string {
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		parts[i] = n.Name + "=" + n.Addr
	}
	return strings.Join(parts, ",")
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usage = `usage: server [-check | -repair]

Runs the central of the Lotería Nacional with ./config.ini ([DEFAULT];
environment variables of the same names override it). With no flag it
serves agencies until SIGTERM or SIGINT.

  -check    verify the bets file (STORAGE_FILEPATH) against its journal,
            print what was found and exit: 0 if they prove each other
            (an unacknowledged tail aside), 1 on damage
  -repair   keep the longest verified prefix of both files, moving every
            byte removed to <file>.broken-<time>; adopt a bets file that
            has no journal (the course's Python format); then exit
  -h        print this help

docs/durability.md explains the journal, recovery and repair.
`

// dispatch runs the central, or the check or repair asked for by args.
func dispatch(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	check := fs.Bool("check", false, "")
	repair := fs.Bool("repair", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "server: %v\n%s", err, usage)
		return exitConfig
	}
	if fs.NArg() > 0 || *check && *repair {
		fmt.Fprintf(stderr, "server: unexpected arguments %q\n%s", args, usage)
		return exitConfig
	}
	switch {
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
		log.Error("config", logline.Failed, "error", err)
		return exitConfig
	}
	action, rep := "verificar", storage.Report{}
	if repair {
		action = "reparar"
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
			"moved_journal_bytes", rep.MovedJournal, "broken_journal", rep.BrokenJournal)...)
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
		log.Error("config", logline.Failed, "error", err)
		return exitConfig
	}
	level.Set(cfg.Level)
	revoked := new(pki.Revocations)
	if cfg.TLS.Enabled {
		if cfg.Central.TLS, err = loadTLS(cfg.TLS, revoked); err != nil {
			log.Error("config", logline.Failed, "error", err)
			return exitConfig
		}
	}
	log.Info("config", logline.OK, "port", cfg.Port, "listen_backlog", cfg.Backlog, "logging_level", logline.LevelName(cfg.Level),
		"ip", cfg.IP, "agencies", cfg.Central.Agencies, "storage_filepath", cfg.Storage, "storage_nosync", cfg.NoSync,
		"max_connections", cfg.Central.MaxConnections, "max_unauthenticated", cfg.Central.MaxUnauthenticated,
		"idle_timeout", cfg.Central.IdleTimeout, "write_timeout", cfg.Central.WriteTimeout,
		"handshake_timeout", cfg.Central.HandshakeTimeout, "max_inflight_bytes", cfg.Central.MaxInFlightBytes, "shutdown_timeout", cfg.ShutdownTimeout,
		"tls", config.OnOff(cfg.TLS.Enabled), "tls_cert", cfg.TLS.Cert, "tls_key", cfg.TLS.Key, "tls_client_ca", cfg.TLS.ClientCA,
		"tls_crl", cfg.TLS.CRL, "revocados", revoked.Current().Len(), "node_name", cfg.Node, "cluster_nodes", clusterLine(cfg.Cluster))
	if !cfg.TLS.Enabled {
		log.Warn("tls", logline.Progress, "tls", "off", "warning",
			"TLS=off: the lottery is open to anyone: whoever reaches the port can act as any agency, store bets in its name and read its winners")
	}
	config.LogWarnings(log, cfg.Warnings)

	store, rec, err := storage.Open(cfg.Storage, storage.Options{NoSync: cfg.NoSync})
	switch {
	case logDamage(log, err):
		return exitFailed
	case err != nil:
		log.Error("recuperar", logline.Failed, "storage_filepath", cfg.Storage, "error", err)
		return exitFailed
	}
	log.Info("recuperar", logline.OK, "apuestas", rec.Bets, "batches", rec.Batches, "agencias_finalizadas", rec.Finished,
		"bytes_descartados", rec.CutBetsBytes, "journal_bytes_descartados", rec.CutJournal, "grupo_deshecho", rec.RolledBack,
		"bytes_leidos", rec.ReadBytes)
	code, store := serve(cfg, store, log, signals, revoked)
	if err := store.Close(); err != nil {
		log.Error("shutdown", logline.Failed, "resource", "bets_file", "error", err)
		code = exitFailed
	} else {
		log.Info("shutdown", logline.Progress, "resource", "bets_file", "path", cfg.Storage)
	}
	if code == exitOK {
		log.Info("shutdown", logline.OK)
	}
	return code
}

// serve runs the central until a signal, a fatal storage failure or a
// listener failure, then shuts it down. It returns the store to close: a
// node of a group may have replaced its own with a snapshot.
func serve(cfg Config, store *storage.Store, log *slog.Logger, signals <-chan os.Signal, revoked *pki.Revocations) (int, *storage.Store) {
	var ledger central.Ledger = store
	var node *replica.Replica
	if cfg.Cluster != nil {
		var err error
		if node, err = newNode(cfg, store, log, revoked); err != nil {
			log.Error("config", logline.Failed, "error", err)
			return exitConfig, store
		}
		ledger, cfg.Central.Cluster = node, node
	}
	c, err := central.New(cfg.Central, ledger, log)
	if err != nil {
		log.Error("config", logline.Failed, "error", err)
		return exitConfig, store
	}
	ln, err := listen(cfg.IP, cfg.Port, cfg.Backlog)
	if err != nil {
		log.Error("escuchar", logline.Failed, "port", cfg.Port, "error", err)
		return exitFailed, store
	}
	log.Info("escuchar", logline.OK, "addr", ln.Addr().String())
	if node != nil {
		if err := node.Start(replica.HooksFor(c)); err != nil {
			log.Error("replica", logline.Failed, "nodo", cfg.Node, "error", err)
			ln.Close()
			c.Close()
			return exitFailed, store
		}
		log.Info("replica", logline.OK, "nodo", cfg.Node, "raft_addr", node.RaftAddr(), "nodos", len(cfg.Cluster))
	}

	served := make(chan error, 1)
	go func() { served <- c.Serve(ln) }()
	stopWatch := watchVerified(store, log)
	defer stopWatch()

	code := exitOK
	var serveErr error
wait:
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				reloadRevocations(cfg, c, log, revoked)
				continue
			}
			log.Info("shutdown", logline.Progress, "signal", sig.String())
		case <-failed(store, node):
			err := store.Err()
			if node != nil {
				err = node.Err()
			}
			// Damage the background verification found is refused as at
			// start: the same line, no draw, and nothing more written.
			cause := "storage"
			if logDamage(log, err) {
				cause = "damage"
			}
			log.Error("shutdown", logline.Failed, "cause", cause, "error", err)
			code = exitFailed
		case serveErr = <-served:
			log.Error("shutdown", logline.Failed, "cause", "listener", "error", serveErr)
			code = exitFailed
		}
		break wait
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		log.Warn("shutdown", logline.Progress, "resource", "sessions", "forced", true, "error", err)
	}
	if serveErr == nil {
		serveErr = <-served
	}
	if !errors.Is(serveErr, central.ErrServerClosed) && code == exitOK {
		log.Error("shutdown", logline.Failed, "resource", "listener", "error", serveErr)
		code = exitFailed
	}
	log.Info("shutdown", logline.Progress, "resource", "sessions", "closed", true)
	if node == nil {
		return code, store
	}
	// Raft stops first: no entry is applied after, and the store it leaves
	// (a snapshot may have replaced the first one) is the one to close.
	if err := node.Close(); err != nil {
		log.Warn("shutdown", logline.Progress, "resource", "raft", "error", err)
	} else {
		log.Info("shutdown", logline.Progress, "resource", "raft")
	}
	return code, node.Store()
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
			log.Info("verificar", logline.OK, "origen", "inicio", "segundos", fmt.Sprintf("%.3f", time.Since(start).Seconds()))
		case <-store.Failed():
		case <-done:
		}
	}()
	return func() { close(done); <-exited }
}

// logDamage logs err as the refusal of damaged files, if it is one, and
// reports whether it was.
func logDamage(log *slog.Logger, err error) bool {
	var damage *storage.DamageError
	if !errors.As(err, &damage) {
		return false
	}
	// Nothing was changed: the operator decides (-check, -repair).
	log.Error("recuperar", logline.Failed, "file", damage.File, "offset", damage.Offset, "error", damage.What,
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
		Storage: storage.Options{NoSync: cfg.NoSync}, Log: log,
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
		log.Warn("recargar_crl", logline.Failed, "error", "TLS is off: there is nothing to revoke")
	case cfg.TLS.CRL == "":
		log.Warn("recargar_crl", logline.Failed, "error", "TLS_CRL is not set")
	default:
		if err := reloadCRL(cfg.TLS.CRL, revoked); err != nil {
			log.Error("recargar_crl", logline.Failed, "tls_crl", cfg.TLS.CRL, "error", err, "revocados", revoked.Current().Len())
			return
		}
		closed := c.DropRevoked(revoked.Current().Revoked)
		log.Info("recargar_crl", logline.OK, "tls_crl", cfg.TLS.CRL, "revocados", revoked.Current().Len(), "conexiones_cerradas", closed)
	}
}

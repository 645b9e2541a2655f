package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"lottery/admin"
	"lottery/central"
	"lottery/config"
	"lottery/pki"
	"lottery/protocol"
	"lottery/replica"
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
	// LogKey is the audit log's signing key (LOG_KEY, .pki/log.key):
	// absent by default, set explicitly it must be there.
	LogKey string
	// DrawNumber is DRAW_NUMBER: "course" (7574) or "committed".
	DrawNumber     string
	logKeyExplicit bool
	// Node and Cluster make this central one node of a replicated group:
	// NODE_NAME and CLUSTER_NODES (empty: the single central).
	Node     string
	Cluster  []replica.Node
	Warnings []config.Warning // blank values, unknown keys: logged, not fatal
	// Admin is where the admin listener listens (ADMIN_ADDRESS), "" when
	// it is off.
	Admin string
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
		certFile, keyFile = pki.NodeCertFile(node), pki.NodeKeyFile(node)
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
		Admin:           v.String("ADMIN_ADDRESS", admin.DefaultAddress),
		TLS: TLSConfig{
			Enabled:  v.Bool("TLS", true),
			Cert:     v.String("TLS_CERT", "./.pki/"+certFile),
			Key:      v.String("TLS_KEY", "./.pki/"+keyFile),
			ClientCA: v.String("TLS_CLIENT_CA", "./.pki/"+pki.CAFile),
			CRL:      v.String("TLS_CRL", ""),
		},
		LogKey:     v.String("LOG_KEY", "./.pki/"+pki.LogKeyFile),
		DrawNumber: v.String("DRAW_NUMBER", drawCourse),
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
	if raw, ok := v.Raw("LOG_KEY"); ok && raw != "" { // a blank one falls back to the default
		c.logKeyExplicit = true
	}
	c.Central.StatementFile = c.Storage + ".sorteo"
	if err := v.Err(); err != nil {
		return c, err
	}
	if c.Central.MaxUnauthenticated == 0 {
		c.Central.MaxUnauthenticated = central.UnauthenticatedLimit(c.Central.MaxConnections)
	}
	if err := c.checkCluster(clusterSpec); err != nil {
		return c, err
	}
	if err := c.checkAdmin(); err != nil {
		return c, err
	}
	switch {
	case c.DrawNumber != drawCourse && c.DrawNumber != drawCommitted:
		return c, fmt.Errorf("DRAW_NUMBER: %q, want %s (the course's 7574) or %s (drawn from a secret committed to before any bet)", c.DrawNumber, drawCourse, drawCommitted)
	case c.DrawNumber == drawCommitted && c.Cluster != nil:
		return c, errors.New("DRAW_NUMBER=committed: not offered by a replicated central (CLUSTER_NODES) yet")
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

// checkAdmin reads ADMIN_ADDRESS: host:port, or off (Admin is then "").
func (c *Config) checkAdmin() error {
	addr, on, err := admin.ParseAddress(c.Admin)
	if err != nil {
		return err
	}
	if !on {
		addr = ""
	}
	c.Admin = addr
	return nil
}

// loadLog reads the audit log's signing key. The default one may be absent
// (no receipts and no signed draw then, and a warning says so); a key
// named explicitly must be there. Every node of a replicated central signs
// with the same key, so that its checkpoints and its statement are the
// same bytes on every node.
func (c Config) loadLog() (*central.Log, error) {
	if _, err := os.Stat(c.LogKey); err != nil && !c.logKeyExplicit {
		return nil, nil
	}
	signer, err := pki.ReadLogSigner(c.LogKey)
	if err != nil {
		return nil, fmt.Errorf("LOG_KEY: %w (issue it with `bin/pki -out .pki`)", err)
	}
	return central.NewLog(signer), nil
}

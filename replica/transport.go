package replica

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"lottery/pki"
)

// handshakeTimeout bounds a peer's TLS handshake, so a stranger that
// connects to the Raft port and says nothing holds a goroutine that long at
// most.
const handshakeTimeout = 5 * time.Second

// streamLayer carries Raft's RPCs over mutual TLS: every connection, both
// ways, proves with a certificate of the lottery's CA that it is a central
// of this group, by name (pki.CentralURI). An agency's certificate, or a
// central of another group, is refused.
type streamLayer struct {
	net.Listener
	tls     *tls.Config // the node's own certificate and the CA, both ways
	names   map[string]string
	revoked *pki.Revocations // the central's revocation list (TLS_CRL), nil for none
}

// newStreamLayer listens on the node's Raft address. cfg must hold the
// node's certificate and, as both RootCAs and ClientCAs, the lottery's CA.
func newStreamLayer(ln net.Listener, cfg *tls.Config, nodes []Node, revoked *pki.Revocations) *streamLayer {
	names := make(map[string]string, len(nodes)) // Raft address → node name
	for _, n := range nodes {
		names[n.RaftAddr()] = n.Name
	}
	return &streamLayer{Listener: ln, tls: cfg, names: names, revoked: revoked}
}

// member checks that a verified certificate names a central of the group
// and is not revoked.
func (l *streamLayer) member(cert *x509.Certificate) error {
	if err := l.checkRevoked(cert); err != nil {
		return err
	}
	for _, u := range cert.URIs {
		for _, name := range l.names {
			if u.String() == pki.CentralURI(name).String() {
				return nil
			}
		}
	}
	return errors.New("replica: the peer's certificate names no central of this group")
}

// Accept returns the next connection; its handshake (bounded, and checking
// the peer is a member) runs on its first read or write, in the
// connection's own goroutine, so one slow stranger never stalls the others.
func (l *streamLayer) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cfg := l.tls.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.VerifyPeerCertificate = nil
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { return l.member(cs.PeerCertificates[0]) }
	return &verifiedConn{Conn: tls.Server(conn, cfg), raw: conn}, nil
}

// Dial connects to the node at address, which must prove it is that node.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	want := string(address)
	name, ok := l.names[want]
	if !ok {
		return nil, fmt.Errorf("replica: %s is no node of this group", want)
	}
	cfg := l.tls.Clone()
	// The name in the certificate is what is checked, not the host it was
	// dialled by: a node may be reached by any address.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verifyChain(cs, l.tls.RootCAs, x509.ExtKeyUsageServerAuth); err != nil {
			return err
		}
		if err := l.checkRevoked(cs.PeerCertificates[0]); err != nil {
			return err
		}
		for _, u := range cs.PeerCertificates[0].URIs {
			if u.String() == pki.CentralURI(name).String() {
				return nil
			}
		}
		return fmt.Errorf("replica: the node at %s is not %s", want, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	return d.DialContext(ctx, "tcp", want)
}

// checkRevoked refuses a certificate on the revocation list in force, the
// same list (TLS_CRL, reread on SIGHUP) that refuses agencies.
func (l *streamLayer) checkRevoked(cert *x509.Certificate) error {
	if l.revoked != nil && l.revoked.Current().Revoked(cert.SerialNumber) {
		return fmt.Errorf("replica: the peer's certificate (serial %s) is revoked", pki.FormatSerial(cert.SerialNumber))
	}
	return nil
}

// PeerTLS is a node's TLS toward the other nodes, both ways: TLS 1.3, its
// own certificate, and the lottery's CA to verify theirs.
func PeerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("replica: %s holds no certificate", caFile)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool}, nil
}

// verifyChain checks the peer's chain against roots, as crypto/tls would
// without InsecureSkipVerify, but without a host name.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("replica: the peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// verifiedConn completes the server side's handshake, bounded by
// handshakeTimeout, before the first byte is read or written.
type verifiedConn struct {
	*tls.Conn
	raw  net.Conn
	once sync.Once
	err  error
}

func (c *verifiedConn) handshake() error {
	c.once.Do(func() {
		c.raw.SetDeadline(time.Now().Add(handshakeTimeout))
		if c.err = c.Conn.Handshake(); c.err != nil {
			c.raw.Close()
			return
		}
		c.raw.SetDeadline(time.Time{})
	})
	return c.err
}

func (c *verifiedConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *verifiedConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

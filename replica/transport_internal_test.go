package replica

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"lottery/pki"
)

// peers issues certificates of one CA (and one of another CA) and builds
// the peer TLS of each.
type peers struct {
	t   *testing.T
	dir string
	ca  *pki.CA
}

func newPeers(t *testing.T) *peers {
	ca, err := pki.NewCA("test CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p := &peers{t: t, dir: t.TempDir(), ca: ca}
	os.WriteFile(filepath.Join(p.dir, "ca.crt"), ca.CertPEM(), 0o600)
	return p
}

// config returns the peer TLS of a certificate: a central's (name) or,
// with agency > 0, agency's; other, when set, signs it instead.
func (p *peers) config(name string, agency int, other *pki.CA) (*tls.Config, *x509.Certificate) {
	ca := p.ca
	if other != nil {
		ca = other
	}
	var crt, key []byte
	var err error
	if agency > 0 {
		crt, key, err = ca.IssueAgency(agency, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	} else {
		crt, key, err = ca.IssueCentral(name, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	}
	if err != nil {
		p.t.Fatal(err)
	}
	base := filepath.Join(p.dir, name)
	os.WriteFile(base+".crt", crt, 0o600)
	os.WriteFile(base+".key", key, 0o600)
	cfg, err := PeerTLS(base+".crt", base+".key", filepath.Join(p.dir, "ca.crt"))
	if err != nil {
		p.t.Fatal(err)
	}
	cert, _ := pki.ReadCertificate(base + ".crt")
	return cfg, cert
}

// TestStreamLayer: a node accepts and dials only certificates of its CA
// that name a node of its group, the node it meant to reach, not revoked.
func TestStreamLayer(t *testing.T) {
	p := newPeers(t)
	stranger, err := pki.NewCA("another CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	revoked := new(pki.Revocations)
	server1, _ := p.config("server1", 0, nil)
	good, _ := p.config("server2", 0, nil)
	revokedNode, revokedCert := p.config("server3", 0, nil)
	tests := []struct {
		name   string
		client *tls.Config
		ok     bool
	}{
		{"a node of the group", good, true},
		{"an agency's certificate", func() *tls.Config { c, _ := p.config("agency", 1, nil); return c }(), false},
		{"a central of another group", func() *tls.Config { c, _ := p.config("server9", 0, nil); return c }(), false},
		{"a node of another CA", func() *tls.Config { c, _ := p.config("server2", 0, stranger); return c }(), false},
		{"a revoked node", revokedNode, false},
	}
	l, err := pki.ParseRevocationList([]byte(pki.FormatSerial(revokedCert.SerialNumber) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	revoked.Set(l)
	nodes := []Node{{Name: "server1", Addr: "127.0.0.1:1"}, {Name: "server2", Addr: "127.0.0.1:2"}, {Name: "server3", Addr: "127.0.0.1:3"}}
	for _, tt := range tests {
		t.Run("accept/"+tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			layer := newStreamLayer(ln, server1, nodes, revoked)
			defer layer.Close()
			got := make(chan error, 1)
			go func() {
				conn, err := layer.Accept()
				if err != nil {
					got <- err
					return
				}
				defer conn.Close()
				_, err = io.ReadFull(conn, make([]byte, 4))
				got <- err
			}()
			cfg := tt.client.Clone()
			cfg.InsecureSkipVerify = true // this side's check is not what is tested
			conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
			if err == nil {
				conn.Write([]byte("ping"))
				defer conn.Close()
			}
			if err := <-got; (err == nil) != tt.ok {
				t.Fatalf("accepted: %v, want %v", err, tt.ok)
			}
		})
	}
	// Dialling: the node at an address must be the node of that address.
	for _, tt := range []struct {
		name   string
		server *tls.Config
		ok     bool
	}{
		{"the node it meant", good, true},
		{"another node at its address", server1, false},
		{"a revoked node", revokedNode, false},
	} {
		t.Run("dial/"+tt.name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", tt.server)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if conn, err := ln.Accept(); err == nil {
					conn.(*tls.Conn).Handshake()
					conn.Close()
				}
			}()
			addr := ln.Addr().String()
			target := nodes[1] // server2…
			if tt.server == revokedNode {
				target = nodes[2]
			}
			layer := &streamLayer{tls: server1, names: map[string]string{addr: target.Name}, revoked: revoked}
			conn, err := layer.Dial(raft.ServerAddress(addr), time.Second)
			if err == nil {
				conn.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("dial: %v, want ok %v", err, tt.ok)
			}
		})
	}
}

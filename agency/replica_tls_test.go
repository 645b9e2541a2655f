package agency_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"lottery/agency"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/pki"
)

// TestAgency_LeaderHintTLS: the leader a not_leader names is verified as
// any address of the list: its certificate must name the host of the hint.
// The leader's certificate names localhost only: a hint naming it as
// localhost is followed; one naming it as 127.0.0.1 is refused as an
// untrusted central (exit, not retried), although the follower that gave
// it is trusted.
func TestAgency_LeaderHintTLS(t *testing.T) {
	ca := testCA(t)
	serverTLS := func(hosts ...string) *tls.Config { return nodeTLS(t, ca, "server1", hosts...) }
	clientTLS := agencyTLS(t, ca)

	tests := []struct {
		name    string
		hint    func(port string) string
		trusted bool
	}{
		{"OK/HostInCertificate", func(port string) string { return "localhost:" + port }, true},
		{"ErrHostNotInCertificate", func(port string) string { return "127.0.0.1:" + port }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leader := newFake(t, func(f *fakeCentral) { f.ln = tls.NewListener(f.ln, serverTLS("localhost")) })
			_, port, _ := net.SplitHostPort(leader.addr)
			follower := newFake(t, func(f *fakeCentral) {
				f.ln = tls.NewListener(f.ln, serverTLS("localhost", "127.0.0.1"))
				f.follow(tt.hint(port))
			})
			bets := gendata.Bets(1, 30, 1, seed)
			res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: follower.addr,
				TLS: clientTLS, DataFile: writeBets(t, bets), BackoffInitial: 10 * time.Millisecond})
			if tt.trusted {
				if err != nil || res.Sent != len(bets) || len(leader.stored()) != len(bets) {
					t.Fatalf("Run: %v; sent %d, the leader stored %d; want all %d", err, res.Sent, len(leader.stored()), len(bets))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "cannot be trusted") {
				t.Fatalf("Run: err = %v, want an untrusted central", err)
			}
			l, ok := testutil.FindOne(logs.Lines(t), "conectar", "fail")
			if !ok || l.Get("server_address") != tt.hint(port) {
				t.Errorf("conectar fail line %q, want server_address: %s", l.Raw, tt.hint(port))
			}
			if n := len(leader.stored()); n != 0 {
				t.Errorf("the leader stored %d bets through an untrusted connection", n)
			}
		})
	}
}

// testCA is a fresh lottery CA.
func testCA(t *testing.T) *pki.CA {
	now := time.Now()
	ca, err := pki.NewCA("test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// nodeTLS is the server TLS of central node name, certified by ca for hosts.
func nodeTLS(t *testing.T, ca *pki.CA, name string, hosts ...string) *tls.Config {
	now := time.Now()
	certPEM, keyPEM, err := ca.IssueCentral(name, hosts, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
}

// agencyTLS is agency 1's TLS with a certificate of ca.
func agencyTLS(t *testing.T, ca *pki.CA) *tls.Config {
	now := time.Now()
	certPEM, keyPEM, err := ca.IssueAgency(1, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	agencyCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{agencyCert}, RootCAs: roots}
}

// TestAgency_AnotherNodeAtAName: in a list of nodes, a name that leads to
// another node of the lottery (its certificate names other hosts: Docker
// reused a restarted container's address) is not trusted as that node, but
// it is no reason to give up: the agency moves on to the next node.
func TestAgency_AnotherNodeAtAName(t *testing.T) {
	ca := testCA(t)
	other := newFake(t, func(f *fakeCentral) { f.ln = tls.NewListener(f.ln, nodeTLS(t, ca, "server2", "server2")) })
	leader := newFake(t, func(f *fakeCentral) { f.ln = tls.NewListener(f.ln, nodeTLS(t, ca, "server1", "127.0.0.1")) })
	bets := gendata.Bets(1, 30, 1, seed)
	res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: other.addr + "," + leader.addr,
		TLS: agencyTLS(t, ca), DataFile: writeBets(t, bets), BackoffInitial: 10 * time.Millisecond})
	if err != nil || res.Sent != len(bets) || len(leader.stored()) != len(bets) || len(other.stored()) != 0 {
		t.Fatalf("Run: %v; sent %d, stored %d by the node at its name, %d by the other; want all %d by the first", err, res.Sent, len(leader.stored()), len(other.stored()), len(bets))
	}
	if !strings.Contains(logs.String(), "is another node") {
		t.Errorf("no conectar line names the other node:\n%s", logs.String())
	}
}

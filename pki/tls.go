package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
)

// Why a handshake was refused, as logged by the central (`reason: …`).
const (
	ReasonNoCertificate = "no_certificate" // the peer sent no client certificate
	ReasonUnknownCA     = "unknown_ca"     // signed by another CA than the lottery's
	ReasonExpired       = "expired"        // outside its validity period
	ReasonRevoked       = "revoked"        // its serial is in the revocation list
	ReasonNotAnAgency   = "not_an_agency"  // a valid certificate that names no agency
	ReasonBadCert       = "bad_certificate"
	ReasonTimeout       = "timeout" // no complete handshake within the deadline
	ReasonProtocol      = "tls_error"
)

// Sentinels returned by the central's verification, classified by Reason.
var (
	ErrNoCertificate = errors.New("pki: no client certificate")
	ErrRevoked       = errors.New("pki: certificate revoked")
)

// Reason classifies a failed handshake for the log.
func Reason(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.Is(err, ErrNoCertificate):
		return ReasonNoCertificate
	case errors.Is(err, ErrRevoked):
		return ReasonRevoked
	case errors.Is(err, ErrNoIdentity):
		return ReasonNotAnAgency
	case errors.As(err, &unknown):
		return ReasonUnknownCA
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ReasonExpired
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return ReasonBadCert
	}
	return ReasonProtocol
}

// Revocations is the revocation list in force. The central reads it at
// every handshake and replaces it on SIGHUP, so it is an atomic pointer:
// handshakes never wait for a reload.
type Revocations struct {
	list atomic.Pointer[RevocationList]
}

// Set puts l in force (nil: nothing is revoked).
func (r *Revocations) Set(l *RevocationList) { r.list.Store(l) }

// Current returns the list in force.
func (r *Revocations) Current() *RevocationList { return r.list.Load() }

// check refuses a chain with a revoked certificate.
func (r *Revocations) check(chains [][]*x509.Certificate) error {
	l := r.Current()
	for _, chain := range chains {
		for _, c := range chain {
			if l.Revoked(c.SerialNumber) {
				return fmt.Errorf("%w: serial %s (%s)", ErrRevoked, FormatSerial(c.SerialNumber), c.Subject.CommonName)
			}
		}
	}
	return nil
}

// ServerConfig is the central's TLS for agencies: TLS 1.3 only, its own
// certificate, and a client certificate that must chain to the lottery's CA
// (clientCAFile), be unrevoked and name exactly one agency. The chain is
// verified by crypto/tls; VerifyClientCertIfGiven (rather than Require…)
// lets a missing certificate reach VerifyConnection, so the log can say
// "no_certificate" instead of a generic handshake error.
func ServerConfig(certFile, keyFile, clientCAFile string, revoked *Revocations) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("central certificate: %w", err)
	}
	pool, err := readPool(clientCAFile)
	if err != nil {
		return nil, err
	}
	if revoked == nil {
		revoked = new(Revocations)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrNoCertificate
			}
			if err := revoked.check(cs.VerifiedChains); err != nil {
				return err
			}
			_, err := AgencyID(cs.PeerCertificates[0])
			return err
		},
	}, nil
}

// PeerAgency returns the agency a completed server-side handshake proved.
func PeerAgency(cs tls.ConnectionState) (uint32, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return 0, ErrNoCertificate
	}
	return AgencyID(cs.PeerCertificates[0])
}

// ClientConfig is an agency's TLS: TLS 1.3 only, its own certificate, and
// a central whose certificate chains to the lottery's CA (caFile). The
// caller sets ServerName to the host it dials (ForServer), so the central's
// certificate must also name that host.
func ClientConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("agency certificate: %w", err)
	}
	pool, err := readPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
	}, nil
}

// ForServer returns a copy of a client config that verifies the central's
// certificate against the host of addr ("server:12345" → "server").
func ForServer(cfg *tls.Config, addr string) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c := cfg.Clone()
	c.ServerName = host
	return c
}

// readPool reads a PEM file of CA certificates.
func readPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA certificate: no PEM certificate in %s", path)
	}
	return pool, nil
}

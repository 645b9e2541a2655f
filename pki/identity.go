// Package pki is the lottery's own public key infrastructure: it issues the
// CA, the central's and every agency's key and certificate offline (Issue),
// reads revocation lists, and builds every tls.Config the programs use, so
// that one place decides how peers are verified (as consul's tlsutil does).
// docs/security.md explains the threat model and how to rotate and revoke.
package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"lottery"
)

// An agency's number travels in its certificate as exactly one URI subject
// alternative name "urn:loteria:agency:<N>" (N in decimal, 1…MaxAgency, no
// sign or leading zero). A central's certificate names it with
// "urn:loteria:central:<name>". The subject's common name ("agency-3") is for
// people only: the central never reads it.
const (
	agencyURNPrefix  = "urn:loteria:agency:"
	centralURNPrefix = "urn:loteria:central:"
)

// ErrNoIdentity means a verified certificate names no agency, or more than one.
var ErrNoIdentity = errors.New("pki: the certificate names no single agency")

// AgencyURI returns the URI SAN that names agency n.
func AgencyURI(n int) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: strings.TrimPrefix(agencyURNPrefix, "urn:") + strconv.Itoa(n)}
}

// CentralURI returns the URI SAN that names the central called name.
func CentralURI(name string) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: strings.TrimPrefix(centralURNPrefix, "urn:") + name}
}

// AgencyID returns the agency number a certificate names. Call it only on a
// certificate whose chain was verified: the number is then the CA's word.
func AgencyID(cert *x509.Certificate) (uint32, error) {
	var id uint32
	found := 0
	for _, u := range cert.URIs {
		s := u.String()
		if !strings.HasPrefix(s, agencyURNPrefix) {
			continue
		}
		found++
		digits := strings.TrimPrefix(s, agencyURNPrefix)
		n, err := strconv.ParseUint(digits, 10, 32)
		if err != nil || n < 1 || n > lottery.MaxAgency || strconv.FormatUint(n, 10) != digits {
			return 0, fmt.Errorf("%w: bad agency URI %q", ErrNoIdentity, s)
		}
		id = uint32(n)
	}
	if found != 1 {
		return 0, ErrNoIdentity
	}
	return id, nil
}

package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lottery"
)

// How the CA signs certificates and how keys and certificates are stored.
const (
	// serialBits gives serials that never collide in practice (CA/Browser
	// Forum asks for 64 random bits at least) and fit RFC 5280's 20 octets.
	serialBits = 128
	// pemBlockCertificate and pemBlockPrivateKey are the PEM types every
	// tool understands: a DER certificate, and a PKCS #8 private key.
	pemBlockCertificate = "CERTIFICATE"
	pemBlockPrivateKey  = "PRIVATE KEY"
	// maxPEMFileSize bounds what is read from a key or certificate file:
	// ours are under 1 KiB; a bigger file is not one of them.
	maxPEMFileSize = 1 << 20
)

// CA is a certificate authority in memory: what signs every certificate the
// programs trust. Key is a crypto.Signer so the CA key could live elsewhere
// (KeyPEM then fails), though Issue always keeps it in ca.key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a self-signed CA with a new ECDSA P-256 key. It may sign
// leaves only (MaxPathLen 0): there are no intermediate CAs here.
func NewCA(commonName string, notBefore, notAfter time.Time) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads ca.crt and ca.key from dir and checks that they belong
// together, so a mixed-up directory fails here rather than at every
// handshake.
func LoadCA(dir string) (*CA, error) {
	cert, err := ReadCertificate(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", filepath.Join(dir, CAFile))
	}
	key, err := readPrivateKeyFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	if err := checkKeyMatches(cert, key, filepath.Join(dir, CAKeyFile)); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertPEM returns the CA certificate as PEM, as written to ca.crt.
func (ca *CA) CertPEM() []byte { return encodeCertPEM(ca.Cert.Raw) }

// KeyPEM returns the CA key as PKCS #8 PEM, as written to ca.key.
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKeyPEM(ca.Key) }

// IssueAgency issues agency n's key and certificate. The certificate names
// the agency by one URI SAN (AgencyURI) and nothing else, and may only
// authenticate a client: an agency's key cannot pose as a central.
func (ca *CA) IssueAgency(n int, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	if n < 1 || n > lottery.MaxAgency {
		return nil, nil, fmt.Errorf("pki: agency number %d out of range 1…%d", n, lottery.MaxAgency)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "agency-" + strconv.Itoa(n)},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		URIs:        []*url.URL{AgencyURI(n)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return withNewKey(func(key crypto.Signer) ([]byte, error) { return ca.sign(tmpl, key) })
}

// IssueCentral issues a central's key and certificate; see
// IssueCentralWithKey.
func (ca *CA) IssueCentral(name string, hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	return withNewKey(func(key crypto.Signer) ([]byte, error) {
		return ca.IssueCentralWithKey(name, hosts, key, notBefore, notAfter)
	})
}

// IssueCentralWithKey issues a certificate for an existing central key, so
// that adding a host name does not change the key every deployment holds.
// The certificate names the central by a URI SAN (CentralURI(name)) and
// covers hosts: an entry that parses as an IP address becomes an IP SAN, any
// other a DNS SAN. It serves TLS and also authenticates a client, because
// centrals will dial each other with it.
func (ca *CA) IssueCentralWithKey(name string, hosts []string, key crypto.Signer, notBefore, notAfter time.Time) (certPEM []byte, err error) {
	if err := checkCentralName(name); err != nil {
		return nil, err
	}
	dns, ips, err := splitHosts(hosts)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		URIs:        []*url.URL{CentralURI(name)},
		DNSNames:    dns,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	return ca.sign(tmpl, key)
}

// withNewKey makes a key, has issue sign a certificate for it, and returns
// both as PEM: every leaf but a reissued central.crt starts with a new key.
func withNewKey(issue func(key crypto.Signer) ([]byte, error)) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = issue(key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// sign gives tmpl a fresh serial and signs it for key's public half.
func (ca *CA) sign(tmpl *x509.Certificate, key crypto.Signer) ([]byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign %q: %w", tmpl.Subject.CommonName, err)
	}
	return encodeCertPEM(der), nil
}

// splitHosts sorts hosts into DNS names and IP addresses, the two kinds of
// SAN a TLS client matches the address it dialled against.
func splitHosts(hosts []string) (dns []string, ips []net.IP, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("pki: a central certificate needs at least one host")
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if h == "" || strings.ContainsFunc(h, func(c rune) bool { return c <= ' ' || c >= 0x7f || c == ',' }) {
			return nil, nil, fmt.Errorf("pki: bad host %q: want a DNS name or an IP address", h)
		}
		dns = append(dns, h)
	}
	return dns, ips, nil
}

// coversHost reports whether cert names host among its DNS or IP SANs.
func coversHost(cert *x509.Certificate, host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		for _, c := range cert.IPAddresses {
			if c.Equal(ip) {
				return true
			}
		}
		return false
	}
	for _, c := range cert.DNSNames {
		if strings.EqualFold(c, host) {
			return true
		}
	}
	return false
}

// certHosts lists cert's DNS and IP SANs as hosts, in the form Options.Hosts
// takes them.
func certHosts(cert *x509.Certificate) []string {
	hosts := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return hosts
}

// newKey makes an ECDSA P-256 key: small, fast, and what every TLS stack
// speaks.
func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	return key, nil
}

// newSerial draws a random positive serial of at most serialBits bits.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), serialBits)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("pki: draw serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func encodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemBlockCertificate, Bytes: der})
}

func encodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemBlockPrivateKey, Bytes: der}), nil
}

// readPEMFile reads a small PEM file whole, refusing one too big to be ours.
func readPEMFile(path string) ([]byte, error) { return readFileLimited(path, maxPEMFileSize) }

// ReadCertificate reads the first CERTIFICATE block of a PEM file; blocks of
// other types before it are skipped.
func ReadCertificate(path string) (*x509.Certificate, error) {
	data, err := readPEMFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("pki: %s holds no %s PEM block", path, pemBlockCertificate)
		}
		if block.Type != pemBlockCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", path, err)
		}
		return cert, nil
	}
}

// readPrivateKeyFile reads a PKCS #8 PRIVATE KEY PEM file, the only form
// Issue writes.
func readPrivateKeyFile(path string) (crypto.Signer, error) {
	data, err := readPEMFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemBlockPrivateKey {
		return nil, fmt.Errorf("pki: %s holds no %s PEM block", path, pemBlockPrivateKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: %s: a %T cannot sign", path, key)
	}
	return signer, nil
}

// checkKeyMatches fails unless key is the private half of cert's public key.
func checkKeyMatches(cert *x509.Certificate, key crypto.Signer, keyPath string) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("pki: %s does not belong to the certificate of %q", keyPath, cert.Subject.CommonName)
	}
	return nil
}

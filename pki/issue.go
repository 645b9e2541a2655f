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
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lottery"
)

// File names inside a PKI directory. Issue writes them; the programs read
// them. A key is always beside the certificate it belongs to.
const (
	CAFile          = "ca.crt"
	CAKeyFile       = "ca.key"
	CentralCertFile = "central.crt"
	CentralKeyFile  = "central.key"
	RevocationFile  = "crl.txt" // what `bin/pki -revoke` appends to
)

// DefaultHosts are the names the central is reached by when nobody says
// otherwise: its Docker Compose service name, and this machine for local runs.
var DefaultHosts = []string{"server", "localhost", "127.0.0.1"}

// A replicated central is a Raft group of 3 or 5 nodes called server1 …
// serverK, each with its own key and certificate: central-server1.crt and
// central-server1.key, … The certificate names the node by the URI SAN
// CentralURI(name) and covers NodeHosts(name); it serves TLS to agencies and
// authenticates the node to the others (they dial each other with mutual
// TLS). A single central (K = 1) has only central.crt.
const (
	nodeNamePrefix = "server"   // node i is "server<i>", its compose service and host name
	nodeFilePrefix = "central-" // its files are "central-<name>.crt" and ".key"
)

// NodeName returns the name of node i (1…K) of a replicated central.
func NodeName(i int) string { return nodeNamePrefix + strconv.Itoa(i) }

// NodeCertFile is the name of node name's certificate in a PKI directory.
func NodeCertFile(name string) string { return nodeFilePrefix + name + ".crt" }

// NodeKeyFile is the name of node name's private key in a PKI directory.
func NodeKeyFile(name string) string { return nodeFilePrefix + name + ".key" }

// NodeHosts are the SANs of node name's certificate besides its URI: its
// name, which is its host on the Compose network, and this machine for
// local runs.
func NodeHosts(name string) []string { return []string{name, "localhost", "127.0.0.1"} }

// CheckCentrals accepts the sizes of a central: 0 or 1 for a single one
// (no node certificates), 3 or 5 for a Raft group. Anything else is an
// error: 2 or 4 nodes tolerate no more failures than 1 or 3, and more than 5
// only slow every commit down.
func CheckCentrals(k int) error {
	switch k {
	case 0, 1, 3, 5:
		return nil
	}
	return fmt.Errorf("pki: %d centrals: a replicated central has 3 or 5 nodes (1 is a single central)", k)
}

// AgencyCertFile is the name of agency n's certificate in a PKI directory.
func AgencyCertFile(n int) string { return "agency-" + strconv.Itoa(n) + ".crt" }

// AgencyKeyFile is the name of agency n's private key in a PKI directory.
func AgencyKeyFile(n int) string { return "agency-" + strconv.Itoa(n) + ".key" }

// What Issue puts in the certificates it signs.
const (
	caCommonName = "Loteria Nacional CA"
	centralName  = "central" // the name of central.crt's central
	// caValidityYears is long because replacing the CA means reissuing
	// every agency's certificate; leaves are rotated far more often.
	caValidityYears   = 10
	leafValidityYears = 2
	// clockSkew backdates NotBefore so a certificate issued now is already
	// valid on a machine whose clock is a little behind.
	clockSkew = time.Hour
	// serialBits gives serials that never collide in practice (CA/Browser
	// Forum asks for 64 random bits at least) and fit RFC 5280's 20 octets.
	serialBits = 128
	// File modes: keys are secrets, certificates are public.
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
	// pemBlockCertificate and pemBlockPrivateKey are the PEM types every
	// tool understands: a DER certificate, and a PKCS #8 private key.
	pemBlockCertificate = "CERTIFICATE"
	pemBlockPrivateKey  = "PRIVATE KEY"
	// maxPEMFileSize bounds what is read from a key or certificate file:
	// ours are under 1 KiB; a bigger file is not one of them.
	maxPEMFileSize = 1 << 20
)

// ErrUnpaired means a key or certificate is missing its other half, so Issue
// refuses to go on rather than overwrite or orphan either.
var ErrUnpaired = errors.New("pki: a key or certificate is missing its pair")

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
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "agency-" + strconv.Itoa(n)},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		URIs:        []*url.URL{AgencyURI(n)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certPEM, err = ca.sign(tmpl, key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// IssueCentral issues a central's key and certificate; see
// IssueCentralWithKey.
func (ca *CA) IssueCentral(name string, hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = ca.IssueCentralWithKey(name, hosts, key, notBefore, notAfter)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
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

// checkCentralName keeps a central's name to characters that need no
// escaping in its URI SAN, so CentralURI(name) reads back as written.
func checkCentralName(name string) error {
	if name == "" {
		return errors.New("pki: empty central name")
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("pki: central name %q: only letters, digits, '-', '_' and '.' allowed", name)
		}
	}
	return nil
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
func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	defer f.Close()
	data, err := readLimited(f, maxPEMFileSize)
	if err != nil {
		return nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	return data, nil
}

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

// Options say what Issue should make of a PKI directory.
type Options struct {
	Dir      string
	Agencies int              // issue agency-1 … agency-N
	Centrals int              // 3 or 5: also issue nodes server1 … serverK (NodeCertFile); 0 or 1: none
	Hosts    []string         // SANs of central.crt (DNS names, or IP addresses when they parse as IPs); nil = DefaultHosts
	Now      func() time.Time // nil = time.Now (tests)
}

// Issue creates whatever of the PKI is missing in opt.Dir and returns the
// paths it wrote, in order (on error, those written before it). It only
// ever adds: an existing key or certificate is never overwritten, so running
// it again with the same options writes nothing, and with more agencies
// writes only the new ones. Every file is written to a temporary file,
// synced, then hard-linked to its name, which fails if the name appeared
// meanwhile; the directory is synced at the end. Keys are 0600,
// certificates 0644, a new directory 0700.
//
// When central.crt exists but does not cover a host in opt.Hosts, Issue
// reissues it for the same key (central.key is left alone, so nothing that
// pinned it changes) covering its old hosts and the new ones. The old
// certificate is first renamed to central.crt.old-<serial> (FormatSerial),
// so no certificate is ever lost; that name is not among those returned.
//
// With Centrals K of 3 or 5 it also issues each node's key and certificate
// (NodeKeyFile, NodeCertFile) for server1 … serverK, covering NodeHosts; an
// existing node certificate is kept as it is.
//
// Issue refuses, with ErrUnpaired naming the file, a key without its
// certificate or a certificate without its key, and ca.crt without ca.key
// when something needs signing. It also refuses to make a new CA while
// central, node or agency certificates exist: they were signed by a CA that is
// gone, and a new one would not verify them.
func Issue(opt Options) (written []string, err error) {
	hosts := opt.Hosts
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	if err := opt.check(hosts); err != nil {
		return nil, err
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	if err := os.MkdirAll(opt.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	p, err := planIssue(opt.Dir, opt.Agencies, opt.Centrals, hosts)
	if err != nil {
		return nil, err
	}
	if p.empty() {
		return nil, nil
	}
	d := &pkiDir{path: opt.Dir}
	defer func() {
		written = d.written
		if len(d.written) > 0 {
			if serr := syncDir(opt.Dir); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	return nil, d.carryOut(p, now())
}

// check rejects options Issue cannot honour before anything is written.
func (opt Options) check(hosts []string) error {
	if opt.Dir == "" {
		return errors.New("pki: no directory given")
	}
	if opt.Agencies < 0 || opt.Agencies > lottery.MaxAgency {
		return fmt.Errorf("pki: number of agencies %d out of range 0…%d", opt.Agencies, lottery.MaxAgency)
	}
	if err := CheckCentrals(opt.Centrals); err != nil {
		return err
	}
	_, _, err := splitHosts(hosts)
	return err
}

// What Issue must do to the central's certificate.
const (
	centralKeep    = iota // it exists and covers every host
	centralNew            // neither central.crt nor central.key exists
	centralReissue        // it exists but misses a host
)

// issuePlan is what Issue found missing, worked out before anything is
// written so that a directory Issue refuses is left as it was.
type issuePlan struct {
	newCA        bool // ca.crt and ca.key are both missing
	caCertOnly   bool // ca.crt exists without ca.key
	central      int  // centralKeep, centralNew or centralReissue
	oldCentral   *x509.Certificate
	centralHosts []string // the hosts of the new central certificate
	nodes        []string // nodes of a replicated central whose key and certificate are missing
	agencies     []int    // agencies whose key and certificate are missing
}

func (p *issuePlan) empty() bool {
	return !p.newCA && p.central == centralKeep && len(p.nodes) == 0 && len(p.agencies) == 0
}

func (p *issuePlan) needsSigning() bool {
	return p.central != centralKeep || len(p.nodes) > 0 || len(p.agencies) > 0
}

// planIssue inspects dir and works out what to write.
func planIssue(dir string, agencies, centrals int, hosts []string) (*issuePlan, error) {
	p := &issuePlan{}
	if err := p.planCA(dir); err != nil {
		return nil, err
	}
	leaves, err := p.planCentral(dir, hosts)
	if err != nil {
		return nil, err
	}
	for i := 1; centrals > 1 && i <= centrals; i++ {
		name := NodeName(i)
		exists, err := pairExists(dir, NodeCertFile(name), NodeKeyFile(name))
		if err != nil {
			return nil, err
		}
		if exists {
			leaves = append(leaves, NodeCertFile(name))
		} else {
			p.nodes = append(p.nodes, name)
		}
	}
	for n := 1; n <= agencies; n++ {
		exists, err := pairExists(dir, AgencyCertFile(n), AgencyKeyFile(n))
		if err != nil {
			return nil, err
		}
		if exists {
			leaves = append(leaves, AgencyCertFile(n))
		} else {
			p.agencies = append(p.agencies, n)
		}
	}
	if p.newCA && len(leaves) > 0 {
		return nil, fmt.Errorf("%w: %s exists but %s and %s do not: its CA is gone, and a new one would not verify it",
			ErrUnpaired, filepath.Join(dir, leaves[0]), CAFile, CAKeyFile)
	}
	if p.caCertOnly && p.needsSigning() {
		return nil, fmt.Errorf("%w: %s exists but %s does not, and new certificates need signing: restore the CA key",
			ErrUnpaired, filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	}
	return p, nil
}

func (p *issuePlan) planCA(dir string) error {
	crt, err := fileExists(filepath.Join(dir, CAFile))
	if err != nil {
		return err
	}
	key, err := fileExists(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return err
	}
	switch {
	case key && !crt:
		return fmt.Errorf("%w: %s exists but %s does not: restore the CA certificate",
			ErrUnpaired, filepath.Join(dir, CAKeyFile), filepath.Join(dir, CAFile))
	case crt && !key:
		p.caCertOnly = true
	case !crt && !key:
		p.newCA = true
	}
	return nil
}

// planCentral decides whether central.crt must be made or reissued; it
// returns the certificates that exist, which a new CA would orphan.
func (p *issuePlan) planCentral(dir string, hosts []string) (existing []string, err error) {
	exists, err := pairExists(dir, CentralCertFile, CentralKeyFile)
	if err != nil {
		return nil, err
	}
	if !exists {
		p.central = centralNew
		p.centralHosts = hosts
		return nil, nil
	}
	old, err := ReadCertificate(filepath.Join(dir, CentralCertFile))
	if err != nil {
		return nil, err
	}
	union := certHosts(old)
	for _, h := range hosts {
		if !coversHost(old, h) {
			union = append(union, h)
		}
	}
	if len(union) > len(certHosts(old)) {
		p.central = centralReissue
		p.oldCentral = old
		p.centralHosts = union
	}
	return []string{CentralCertFile}, nil
}

// pairExists reports whether both a certificate and its key are in dir,
// neither, or (an error) only one of them.
func pairExists(dir, certName, keyName string) (bool, error) {
	certPath, keyPath := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	crt, err := fileExists(certPath)
	if err != nil {
		return false, err
	}
	key, err := fileExists(keyPath)
	if err != nil {
		return false, err
	}
	switch {
	case crt && !key:
		return false, fmt.Errorf("%w: %s exists but %s does not: restore the key, or revoke and remove the certificate to issue a new pair",
			ErrUnpaired, certPath, keyPath)
	case key && !crt:
		hint := ""
		if certName == CentralCertFile {
			hint = " (a reissue keeps the previous one as " + CentralCertFile + ".old-<serial>)"
		}
		return false, fmt.Errorf("%w: %s exists but %s does not: restore the certificate%s, or remove the key to issue a new pair",
			ErrUnpaired, keyPath, certPath, hint)
	}
	return crt && key, nil
}

func fileExists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("pki: %w", err)
	}
}

// pkiDir writes a plan into a directory and remembers what it wrote.
type pkiDir struct {
	path    string
	written []string
}

// carryOut writes what p says is missing, CA first: every later file needs
// it. Each key is written before its certificate.
func (d *pkiDir) carryOut(p *issuePlan, now time.Time) error {
	ca, err := d.caFor(p, now)
	if err != nil || ca == nil {
		return err
	}
	notBefore := now.Add(-clockSkew)
	notAfter := now.AddDate(leafValidityYears, 0, 0)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter // a leaf cannot outlive its CA
	}
	switch p.central {
	case centralNew:
		crt, key, err := ca.IssueCentral(centralName, p.centralHosts, notBefore, notAfter)
		if err != nil {
			return err
		}
		if err := d.writePair(CentralCertFile, crt, CentralKeyFile, key); err != nil {
			return err
		}
	case centralReissue:
		if err := d.reissueCentral(ca, p, notBefore, notAfter); err != nil {
			return err
		}
	}
	for _, name := range p.nodes {
		crt, key, err := ca.IssueCentral(name, NodeHosts(name), notBefore, notAfter)
		if err != nil {
			return err
		}
		if err := d.writePair(NodeCertFile(name), crt, NodeKeyFile(name), key); err != nil {
			return err
		}
	}
	for _, n := range p.agencies {
		crt, key, err := ca.IssueAgency(n, notBefore, notAfter)
		if err != nil {
			return err
		}
		if err := d.writePair(AgencyCertFile(n), crt, AgencyKeyFile(n), key); err != nil {
			return err
		}
	}
	return nil
}

// caFor makes and writes a new CA, or loads the existing one when something
// needs signing; it returns nil when nothing does.
func (d *pkiDir) caFor(p *issuePlan, now time.Time) (*CA, error) {
	if !p.newCA {
		if !p.needsSigning() {
			return nil, nil
		}
		return LoadCA(d.path)
	}
	ca, err := NewCA(caCommonName, now.Add(-clockSkew), now.AddDate(caValidityYears, 0, 0))
	if err != nil {
		return nil, err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := d.writePair(CAFile, ca.CertPEM(), CAKeyFile, key); err != nil {
		return nil, err
	}
	return ca, nil
}

// reissueCentral replaces central.crt by one for the same key covering
// p.centralHosts, keeping the old one as central.crt.old-<serial>.
func (d *pkiDir) reissueCentral(ca *CA, p *issuePlan, notBefore, notAfter time.Time) error {
	keyPath := filepath.Join(d.path, CentralKeyFile)
	key, err := readPrivateKeyFile(keyPath)
	if err != nil {
		return err
	}
	if err := checkKeyMatches(p.oldCentral, key, keyPath); err != nil {
		return err
	}
	crt, err := ca.IssueCentralWithKey(centralName, p.centralHosts, key, notBefore, notAfter)
	if err != nil {
		return err
	}
	certPath := filepath.Join(d.path, CentralCertFile)
	oldPath := certPath + ".old-" + FormatSerial(p.oldCentral.SerialNumber)
	if exists, err := fileExists(oldPath); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("pki: %s already exists: not moving %s over it", oldPath, certPath)
	}
	if err := os.Rename(certPath, oldPath); err != nil {
		return fmt.Errorf("pki: keep the old central certificate: %w", err)
	}
	return d.writeNew(CentralCertFile, crt, certMode)
}

func (d *pkiDir) writePair(certName string, certPEM []byte, keyName string, keyPEM []byte) error {
	if err := d.writeNew(keyName, keyPEM, keyMode); err != nil {
		return err
	}
	return d.writeNew(certName, certPEM, certMode)
}

// writeNew creates name in d with data and mode, never replacing a file:
// the data goes to a synced temporary file first, which is then hard-linked
// to name (an error if name exists by then) and removed.
func (d *pkiDir) writeNew(name string, data []byte, mode fs.FileMode) error {
	final := filepath.Join(d.path, name)
	tmp, err := os.CreateTemp(d.path, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSynced(tmp, data, mode); err != nil {
		return fmt.Errorf("pki: write %s: %w", final, err)
	}
	if err := os.Link(tmp.Name(), final); err != nil {
		return fmt.Errorf("pki: create %s: %w", final, err)
	}
	d.written = append(d.written, final)
	return nil
}

// writeSynced fills f, sets its mode (not subject to the umask, unlike
// creation), syncs and closes it.
func writeSynced(f *os.File, data []byte, mode fs.FileMode) error {
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes the names created in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("pki: sync %s: %w", dir, err)
	}
	return nil
}

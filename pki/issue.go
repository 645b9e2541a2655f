package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"lottery"
	"lottery/internal/fsutil"
)

// What Issue puts in the certificates it signs, and the modes of the files
// it writes.
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
	// File modes: keys are secrets, certificates are public.
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

// ErrUnpaired means a key or certificate is missing its other half, so Issue
// refuses to go on rather than overwrite or orphan either.
var ErrUnpaired = errors.New("pki: a key or certificate is missing its pair")

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
			if serr := fsutil.SyncDir(opt.Dir); serr != nil && err == nil {
				err = fmt.Errorf("pki: %w", serr)
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

// writeNew creates name in d with data and mode, never replacing a file
// (fsutil.CreateSynced): a name that exists by then is an error.
func (d *pkiDir) writeNew(name string, data []byte, mode fs.FileMode) error {
	final := filepath.Join(d.path, name)
	if err := fsutil.CreateSynced(final, data, mode); err != nil {
		return fmt.Errorf("pki: create %s: %w", final, err)
	}
	d.written = append(d.written, final)
	return nil
}

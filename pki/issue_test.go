package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"lottery"
)

// testNow is the clock of every test: certificates are checked against it.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(caCommonName, testNow.Add(-time.Hour), testNow.AddDate(10, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func parseCertPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("no CERTIFICATE block in %q", data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func parseKeyPEM(t *testing.T, data []byte) any {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("no PRIVATE KEY block in %q", data)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// verifyLeaf checks that leaf chains to ca for usage and, if host is not
// empty, is valid for host.
func verifyLeaf(t *testing.T, ca, leaf *x509.Certificate, usage x509.ExtKeyUsage, host string) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		DNSName:     host,
		CurrentTime: testNow,
		KeyUsages:   []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		t.Errorf("verify %q for usage %v host %q: %v", leaf.Subject.CommonName, usage, host, err)
	}
}

func TestNewCA_OK(t *testing.T) {
	ca := newTestCA(t)
	c := ca.Cert
	if c.Subject.CommonName != caCommonName || !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero || c.MaxPathLen != 0 {
		t.Errorf("CA fields: CN %q IsCA %v BasicConstraintsValid %v MaxPathLen %d/%v",
			c.Subject.CommonName, c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage %v", c.KeyUsage)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > serialBits {
		t.Errorf("serial %v", c.SerialNumber)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !samePublicKey(ca.Key.Public(), parseKeyPEM(t, key).(crypto.Signer).Public()) {
		t.Error("KeyPEM is not the CA key")
	}
	if !bytes.Equal(parseCertPEM(t, ca.CertPEM()).Raw, c.Raw) {
		t.Error("CertPEM is not the CA certificate")
	}
}

func TestCA_IssueAgency(t *testing.T) {
	ca := newTestCA(t)
	t.Run("OK", func(t *testing.T) {
		for _, n := range []int{1, 7, lottery.MaxAgency} {
			certPEM, keyPEM, err := ca.IssueAgency(n, testNow.Add(-time.Hour), testNow.AddDate(2, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			cert := parseCertPEM(t, certPEM)
			verifyLeaf(t, ca.Cert, cert, x509.ExtKeyUsageClientAuth, "")
			if id, err := AgencyID(cert); err != nil || int(id) != n {
				t.Errorf("AgencyID = %d, %v; want %d", id, err, n)
			}
			if want := "agency-" + itoa(n); cert.Subject.CommonName != want {
				t.Errorf("CN %q, want %q", cert.Subject.CommonName, want)
			}
			if len(cert.URIs) != 1 || cert.URIs[0].String() != AgencyURI(n).String() {
				t.Errorf("URIs %v", cert.URIs)
			}
			if len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.EmailAddresses) != 0 {
				t.Errorf("extra SANs: %v %v %v", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cert.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("usage %v / %v", cert.ExtKeyUsage, cert.KeyUsage)
			}
			if cert.IsCA {
				t.Error("agency certificate is a CA")
			}
			if !samePublicKey(cert.PublicKey, parseKeyPEM(t, keyPEM).(crypto.Signer).Public()) {
				t.Error("key does not match certificate")
			}
		}
	})
	for _, n := range []int{0, -1, lottery.MaxAgency + 1} {
		t.Run("ErrRange/"+itoa(n), func(t *testing.T) {
			if _, _, err := ca.IssueAgency(n, testNow, testNow.AddDate(2, 0, 0)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCA_IssueCentral(t *testing.T) {
	ca := newTestCA(t)
	t.Run("OK", func(t *testing.T) {
		certPEM, keyPEM, err := ca.IssueCentral("central", DefaultHosts, testNow.Add(-time.Hour), testNow.AddDate(2, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		cert := parseCertPEM(t, certPEM)
		verifyLeaf(t, ca.Cert, cert, x509.ExtKeyUsageServerAuth, "server")
		verifyLeaf(t, ca.Cert, cert, x509.ExtKeyUsageServerAuth, "localhost")
		verifyLeaf(t, ca.Cert, cert, x509.ExtKeyUsageServerAuth, "127.0.0.1")
		verifyLeaf(t, ca.Cert, cert, x509.ExtKeyUsageClientAuth, "")
		if cert.Subject.CommonName != "central" {
			t.Errorf("CN %q", cert.Subject.CommonName)
		}
		if len(cert.URIs) != 1 || cert.URIs[0].String() != CentralURI("central").String() {
			t.Errorf("URIs %v", cert.URIs)
		}
		if _, err := AgencyID(cert); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("AgencyID of the central: %v, want ErrNoIdentity", err)
		}
		if !slices.Equal(cert.DNSNames, []string{"server", "localhost"}) || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("SANs %v %v", cert.DNSNames, cert.IPAddresses)
		}
		if cert.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("KeyUsage %v", cert.KeyUsage)
		}
		parseKeyPEM(t, keyPEM)
	})
	t.Run("OKWithKey", func(t *testing.T) {
		key, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		certPEM, err := ca.IssueCentralWithKey("central-2", []string{"::1", "b.example"}, key, testNow.Add(-time.Hour), testNow.AddDate(2, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		cert := parseCertPEM(t, certPEM)
		if !key.PublicKey.Equal(cert.PublicKey) {
			t.Error("certificate is not for the key given")
		}
		verifyLeaf(t, ca.Cert, cert, x509.ExtKeyUsageServerAuth, "b.example")
		verifyLeaf(t, ca.Cert, cert, x509.ExtKeyUsageServerAuth, "::1")
		if cert.URIs[0].String() != CentralURI("central-2").String() {
			t.Errorf("URIs %v", cert.URIs)
		}
	})
	errTests := []struct {
		name  string
		cname string
		hosts []string
	}{
		{"ErrNoName", "", DefaultHosts},
		{"ErrNameSpace", "a b", DefaultHosts},
		{"ErrNameColon", "a:b", DefaultHosts},
		{"ErrNoHosts", "central", nil},
		{"ErrEmptyHost", "central", []string{"server", ""}},
		{"ErrHostSpace", "central", []string{"my server"}},
		{"ErrHostComma", "central", []string{"a,b"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ca.IssueCentral(tt.cname, tt.hosts, testNow, testNow.AddDate(2, 0, 0)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestLoadCA(t *testing.T) {
	writeCA := func(t *testing.T, dir string, ca *CA) {
		t.Helper()
		key, err := ca.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, CAFile), ca.CertPEM())
		writeFile(t, filepath.Join(dir, CAKeyFile), key)
	}
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		ca := newTestCA(t)
		writeCA(t, dir, ca)
		got, err := LoadCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Cert.Equal(ca.Cert) {
			t.Error("loaded another certificate")
		}
		if _, _, err := got.IssueAgency(1, testNow, testNow.AddDate(1, 0, 0)); err != nil {
			t.Errorf("loaded CA cannot sign: %v", err)
		}
	})
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"ErrEmptyDir", func(t *testing.T, dir string) {}},
		{"ErrNoKey", func(t *testing.T, dir string) {
			writeCA(t, dir, newTestCA(t))
			os.Remove(filepath.Join(dir, CAKeyFile))
		}},
		{"ErrNoCert", func(t *testing.T, dir string) {
			writeCA(t, dir, newTestCA(t))
			os.Remove(filepath.Join(dir, CAFile))
		}},
		{"ErrKeyMismatch", func(t *testing.T, dir string) {
			writeCA(t, dir, newTestCA(t))
			other, _ := newTestCA(t).KeyPEM()
			writeFile(t, filepath.Join(dir, CAKeyFile), other)
		}},
		{"ErrNotCA", func(t *testing.T, dir string) {
			certPEM, keyPEM, err := newTestCA(t).IssueAgency(1, testNow, testNow.AddDate(1, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, CAFile), certPEM)
			writeFile(t, filepath.Join(dir, CAKeyFile), keyPEM)
		}},
		{"ErrKeyNotPEM", func(t *testing.T, dir string) {
			writeCA(t, dir, newTestCA(t))
			writeFile(t, filepath.Join(dir, CAKeyFile), []byte("not a key"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			if _, err := LoadCA(dir); err == nil {
				t.Error("no error")
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshot reads every file of dir, so a test can tell what changed.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string]string)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

func issue(t *testing.T, opt Options) []string {
	t.Helper()
	if opt.Now == nil {
		opt.Now = fixedNow
	}
	written, err := Issue(opt)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", opt, err)
	}
	return written
}

func names(dir string, paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, strings.TrimPrefix(p, dir+string(filepath.Separator)))
	}
	return out
}

func readTestCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := ReadCertificate(path)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestIssue_OK(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "deploy", ".pki")
	written := issue(t, Options{Dir: dir, Agencies: 3})
	want := []string{"ca.key", "ca.crt", "central.key", "central.crt",
		"agency-1.key", "agency-1.crt", "agency-2.key", "agency-2.crt", "agency-3.key", "agency-3.crt"}
	if got := names(dir, written); !slices.Equal(got, want) {
		t.Fatalf("written %v, want %v", got, want)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, %v; want 0700", st.Mode().Perm(), err)
	}
	files := snapshot(t, dir)
	if len(files) != len(want) {
		t.Errorf("directory holds %d files, want %d (temporary files left?)", len(files), len(want))
	}
	for _, name := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		wantMode := fs.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			wantMode = 0o600
		}
		if st.Mode().Perm() != wantMode {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), wantMode)
		}
	}

	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Cert.Subject.CommonName != "Loteria Nacional CA" || !ca.Cert.IsCA {
		t.Errorf("CA %q IsCA %v", ca.Cert.Subject.CommonName, ca.Cert.IsCA)
	}
	if !ca.Cert.NotBefore.Equal(testNow.Add(-time.Hour)) || !ca.Cert.NotAfter.Equal(testNow.AddDate(10, 0, 0)) {
		t.Errorf("CA valid %v … %v", ca.Cert.NotBefore, ca.Cert.NotAfter)
	}
	central := readTestCert(t, filepath.Join(dir, CentralCertFile))
	verifyLeaf(t, ca.Cert, central, x509.ExtKeyUsageServerAuth, "server")
	verifyLeaf(t, ca.Cert, central, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	verifyLeaf(t, ca.Cert, central, x509.ExtKeyUsageClientAuth, "")
	if !central.NotBefore.Equal(testNow.Add(-time.Hour)) || !central.NotAfter.Equal(testNow.AddDate(2, 0, 0)) {
		t.Errorf("central valid %v … %v", central.NotBefore, central.NotAfter)
	}
	serials := map[string]bool{FormatSerial(ca.Cert.SerialNumber): true, FormatSerial(central.SerialNumber): true}
	for n := 1; n <= 3; n++ {
		agency := readTestCert(t, filepath.Join(dir, AgencyCertFile(n)))
		verifyLeaf(t, ca.Cert, agency, x509.ExtKeyUsageClientAuth, "")
		if id, err := AgencyID(agency); err != nil || int(id) != n {
			t.Errorf("AgencyID(%s) = %d, %v", AgencyCertFile(n), id, err)
		}
		serials[FormatSerial(agency.SerialNumber)] = true
		key, err := readPrivateKeyFile(filepath.Join(dir, AgencyKeyFile(n)))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkKeyMatches(agency, key, AgencyKeyFile(n)); err != nil {
			t.Error(err)
		}
	}
	if len(serials) != 5 {
		t.Errorf("serials repeat: %v", serials)
	}
}

func TestIssue_OKRerunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	issue(t, Options{Dir: dir, Agencies: 2})
	before := snapshot(t, dir)
	if written := issue(t, Options{Dir: dir, Agencies: 2}); len(written) != 0 {
		t.Errorf("rerun wrote %v", written)
	}
	// Fewer agencies, and the default hosts in another order and case, are
	// still covered.
	if written := issue(t, Options{Dir: dir, Agencies: 1, Hosts: []string{"127.0.0.1", "SERVER"}}); len(written) != 0 {
		t.Errorf("rerun with fewer wrote %v", written)
	}
	if after := snapshot(t, dir); !mapsEqual(before, after) {
		t.Error("rerun changed the directory")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestIssue_OKMoreAgencies(t *testing.T) {
	dir := t.TempDir()
	issue(t, Options{Dir: dir, Agencies: 2})
	before := snapshot(t, dir)
	written := issue(t, Options{Dir: dir, Agencies: 4})
	want := []string{"agency-3.key", "agency-3.crt", "agency-4.key", "agency-4.crt"}
	if got := names(dir, written); !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
	after := snapshot(t, dir)
	for name, data := range before {
		if after[name] != data {
			t.Errorf("%s changed", name)
		}
	}
	ca := readTestCert(t, filepath.Join(dir, CAFile))
	for n := 3; n <= 4; n++ {
		verifyLeaf(t, ca, readTestCert(t, filepath.Join(dir, AgencyCertFile(n))), x509.ExtKeyUsageClientAuth, "")
	}
}

func TestIssue_OKNewHost(t *testing.T) {
	dir := t.TempDir()
	issue(t, Options{Dir: dir, Agencies: 1})
	before := snapshot(t, dir)
	old := readTestCert(t, filepath.Join(dir, CentralCertFile))

	written := issue(t, Options{Dir: dir, Agencies: 1, Hosts: []string{"server", "lottery.example", "10.0.0.7"}})
	if got := names(dir, written); !slices.Equal(got, []string{CentralCertFile}) {
		t.Fatalf("written %v, want only %s", got, CentralCertFile)
	}
	after := snapshot(t, dir)
	oldName := CentralCertFile + ".old-" + FormatSerial(old.SerialNumber)
	if after[oldName] != before[CentralCertFile] {
		t.Errorf("old certificate not kept as %s", oldName)
	}
	for name, data := range before {
		if name != CentralCertFile && after[name] != data {
			t.Errorf("%s changed", name)
		}
	}
	if len(after) != len(before)+1 {
		t.Errorf("%d files, want %d", len(after), len(before)+1)
	}

	ca := readTestCert(t, filepath.Join(dir, CAFile))
	central := readTestCert(t, filepath.Join(dir, CentralCertFile))
	for _, host := range []string{"server", "localhost", "127.0.0.1", "lottery.example", "10.0.0.7"} {
		verifyLeaf(t, ca, central, x509.ExtKeyUsageServerAuth, host)
	}
	if !samePublicKey(old.PublicKey, central.PublicKey) {
		t.Error("the reissued certificate has another key")
	}
	if central.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Error("the reissued certificate has the old serial")
	}
	if st, _ := os.Stat(filepath.Join(dir, CentralCertFile)); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode().Perm())
	}

	// Every host is now covered: nothing more to do.
	if written := issue(t, Options{Dir: dir, Agencies: 1, Hosts: []string{"10.0.0.7"}}); len(written) != 0 {
		t.Errorf("rerun wrote %v", written)
	}
}

func TestIssue_OKCAKeyOfflineNothingToSign(t *testing.T) {
	dir := t.TempDir()
	issue(t, Options{Dir: dir, Agencies: 2})
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if written := issue(t, Options{Dir: dir, Agencies: 2}); len(written) != 0 {
		t.Errorf("wrote %v", written)
	}
}

func TestIssue_Err(t *testing.T) {
	remove := func(names ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			for _, name := range names {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string) // after issuing 2 agencies
		opt      Options                        // Dir is filled in
		unpaired bool                           // want ErrUnpaired
		mention  string                         // the error names this file
	}{
		{"ErrAgencyKeyMissing", remove("agency-2.key"), Options{Agencies: 2}, true, "agency-2.key"},
		{"ErrAgencyCertMissing", remove("agency-1.crt"), Options{Agencies: 3}, true, "agency-1.crt"},
		{"ErrCentralKeyMissing", remove("central.key"), Options{Agencies: 2}, true, "central.key"},
		{"ErrCentralCertMissing", remove("central.crt"), Options{Agencies: 2}, true, "central.crt"},
		{"ErrCAKeyMissingNeedsSigning", remove("ca.key"), Options{Agencies: 3}, true, "ca.key"},
		{"ErrCAKeyMissingNewHost", remove("ca.key"), Options{Agencies: 2, Hosts: []string{"new.example"}}, true, "ca.key"},
		{"ErrCACertMissing", remove("ca.crt"), Options{Agencies: 2}, true, "ca.crt"},
		{"ErrCAGone", remove("ca.crt", "ca.key"), Options{Agencies: 2}, true, "central.crt"},
		{"ErrCAGoneAgencyLeft", remove("ca.crt", "ca.key", "central.crt", "central.key"), Options{Agencies: 2}, true, "agency-1.crt"},
		{"ErrCAKeyMismatch", func(t *testing.T, dir string) {
			other, _ := newTestCA(t).KeyPEM()
			writeFile(t, filepath.Join(dir, CAKeyFile), other)
		}, Options{Agencies: 3}, false, "ca.key"},
		{"ErrNegativeAgencies", nil, Options{Agencies: -1}, false, ""},
		{"ErrBadHost", nil, Options{Agencies: 2, Hosts: []string{"a b"}}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			issue(t, Options{Dir: dir, Agencies: 2})
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			opt := tt.opt
			opt.Dir, opt.Now = dir, fixedNow
			expectRefused(t, dir, opt, tt.unpaired, tt.mention)
		})
	}
	t.Run("ErrNoDir", func(t *testing.T) {
		if _, err := Issue(Options{Agencies: 1}); err == nil {
			t.Error("no error")
		}
	})
}

func TestPKIDir_WriteNew(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		d := &pkiDir{path: t.TempDir()}
		if err := d.writeNew("a.key", []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := snapshot(t, d.path); !mapsEqual(got, map[string]string{"a.key": "secret"}) {
			t.Errorf("directory %v", got)
		}
	})
	t.Run("ErrExists", func(t *testing.T) {
		d := &pkiDir{path: t.TempDir()}
		writeFile(t, filepath.Join(d.path, "a.crt"), []byte("first"))
		err := d.writeNew("a.crt", []byte("second"), 0o644)
		if !errors.Is(err, fs.ErrExist) {
			t.Errorf("err %v, want fs.ErrExist", err)
		}
		if got := snapshot(t, d.path); !mapsEqual(got, map[string]string{"a.crt": "first"}) {
			t.Errorf("directory %v", got)
		}
		if len(d.written) != 0 {
			t.Errorf("written %v", d.written)
		}
	})
}

func TestReadCertificate(t *testing.T) {
	ca := newTestCA(t)
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bundle.pem")
		writeFile(t, path, append(append([]byte("text before\n"), key...), ca.CertPEM()...))
		cert, err := ReadCertificate(path)
		if err != nil {
			t.Fatal(err)
		}
		if !cert.Equal(ca.Cert) {
			t.Error("read another certificate")
		}
	})
	tests := []struct {
		name string
		data []byte
	}{
		{"ErrEmpty", nil},
		{"ErrKeyOnly", key},
		{"ErrGarbage", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})},
		{"ErrTooBig", bytes.Repeat([]byte{'x'}, maxPEMFileSize+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.crt")
			writeFile(t, path, tt.data)
			if _, err := ReadCertificate(path); err == nil {
				t.Error("no error")
			}
		})
	}
	t.Run("ErrMissing", func(t *testing.T) {
		if _, err := ReadCertificate(filepath.Join(t.TempDir(), "none.crt")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err %v, want fs.ErrNotExist", err)
		}
	})
}

func TestNodeFiles(t *testing.T) {
	if got := NodeName(2); got != "server2" {
		t.Errorf("NodeName(2) = %q", got)
	}
	if got, want := NodeCertFile("server1"), "central-server1.crt"; got != want {
		t.Errorf("NodeCertFile = %q, want %q", got, want)
	}
	if got, want := NodeKeyFile("server1"), "central-server1.key"; got != want {
		t.Errorf("NodeKeyFile = %q, want %q", got, want)
	}
	for _, k := range []int{0, 1, 3, 5} {
		if err := CheckCentrals(k); err != nil {
			t.Errorf("CheckCentrals(%d) = %v", k, err)
		}
	}
	for _, k := range []int{-1, 2, 4, 6, 7} {
		if err := CheckCentrals(k); err == nil {
			t.Errorf("CheckCentrals(%d) = nil", k)
		}
	}
}

// TestIssue_OKNodes: with Centrals 3 every node gets a key and a certificate
// of its own, naming it by its URI and covering its name and this machine,
// good for serving agencies and for dialling the other nodes; a rerun
// writes nothing, and 5 adds only server4 and server5.
func TestIssue_OKNodes(t *testing.T) {
	dir := t.TempDir()
	written := issue(t, Options{Dir: dir, Agencies: 2, Centrals: 3})
	want := []string{"ca.key", "ca.crt", "central.key", "central.crt",
		"central-server1.key", "central-server1.crt", "central-server2.key", "central-server2.crt",
		"central-server3.key", "central-server3.crt",
		"agency-1.key", "agency-1.crt", "agency-2.key", "agency-2.crt"}
	if got := names(dir, written); !slices.Equal(got, want) {
		t.Fatalf("written %v, want %v", got, want)
	}
	ca := readTestCert(t, filepath.Join(dir, CAFile))
	serials := map[string]bool{}
	for i := 1; i <= 3; i++ {
		name := NodeName(i)
		node := readTestCert(t, filepath.Join(dir, NodeCertFile(name)))
		for _, host := range []string{name, "localhost", "127.0.0.1"} {
			verifyLeaf(t, ca, node, x509.ExtKeyUsageServerAuth, host)
		}
		verifyLeaf(t, ca, node, x509.ExtKeyUsageClientAuth, "")
		for _, other := range []string{"server", NodeName(i%3 + 1)} {
			if err := node.VerifyHostname(other); err == nil {
				t.Errorf("%s covers %s", NodeCertFile(name), other)
			}
		}
		if len(node.URIs) != 1 || node.URIs[0].String() != CentralURI(name).String() {
			t.Errorf("%s URIs %v, want only %s", NodeCertFile(name), node.URIs, CentralURI(name))
		}
		if _, err := AgencyID(node); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("%s names an agency: %v", NodeCertFile(name), err)
		}
		key, err := readPrivateKeyFile(filepath.Join(dir, NodeKeyFile(name)))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkKeyMatches(node, key, NodeKeyFile(name)); err != nil {
			t.Error(err)
		}
		for file, mode := range map[string]fs.FileMode{NodeCertFile(name): 0o644, NodeKeyFile(name): 0o600} {
			if st, err := os.Stat(filepath.Join(dir, file)); err != nil || st.Mode().Perm() != mode {
				t.Errorf("%s mode %v, %v; want %v", file, st.Mode().Perm(), err, mode)
			}
		}
		serials[FormatSerial(node.SerialNumber)] = true
	}
	if len(serials) != 3 {
		t.Errorf("serials repeat: %v", serials)
	}

	before := snapshot(t, dir)
	for _, k := range []int{3, 1, 0} {
		if written := issue(t, Options{Dir: dir, Agencies: 2, Centrals: k}); len(written) != 0 {
			t.Errorf("rerun with %d centrals wrote %v", k, written)
		}
	}
	if after := snapshot(t, dir); !mapsEqual(before, after) {
		t.Error("rerun changed the directory")
	}
	written = issue(t, Options{Dir: dir, Agencies: 2, Centrals: 5})
	want = []string{"central-server4.key", "central-server4.crt", "central-server5.key", "central-server5.crt"}
	if got := names(dir, written); !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
	after := snapshot(t, dir)
	for name, data := range before {
		if after[name] != data {
			t.Errorf("%s changed", name)
		}
	}
}

// TestIssue_OKSingleCentralNoNodes: K = 1 (and the zero value) issue what
// they always did, no node certificate.
func TestIssue_OKSingleCentralNoNodes(t *testing.T) {
	for _, k := range []int{0, 1} {
		dir := t.TempDir()
		written := issue(t, Options{Dir: dir, Agencies: 1, Centrals: k})
		want := []string{"ca.key", "ca.crt", "central.key", "central.crt", "agency-1.key", "agency-1.crt"}
		if got := names(dir, written); !slices.Equal(got, want) {
			t.Errorf("centrals %d: written %v, want %v", k, got, want)
		}
	}
}

func TestIssue_ErrNodes(t *testing.T) {
	remove := func(names ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			for _, name := range names {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string) // after issuing 1 agency and 3 nodes
		centrals int
		unpaired bool   // want ErrUnpaired
		mention  string // the error names this
	}{
		{"ErrTwo", nil, 2, false, "2 centrals"},
		{"ErrFour", nil, 4, false, "4 centrals"},
		{"ErrSix", nil, 6, false, "6 centrals"},
		{"ErrNegative", nil, -1, false, "-1 centrals"},
		{"ErrNodeKeyMissing", remove("central-server2.key"), 3, true, "central-server2.key"},
		{"ErrNodeCertMissing", remove("central-server3.crt"), 5, true, "central-server3.crt"},
		{"ErrCAKeyMissingNewNodes", remove("ca.key"), 5, true, "ca.key"},
		{"ErrCAGoneNodeLeft", remove("ca.crt", "ca.key", "central.crt", "central.key", "agency-1.crt", "agency-1.key"), 3, true, "central-server1.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			issue(t, Options{Dir: dir, Agencies: 1, Centrals: 3})
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			expectRefused(t, dir, Options{Dir: dir, Agencies: 1, Centrals: tt.centrals, Now: fixedNow}, tt.unpaired, tt.mention)
		})
	}
}

// expectRefused runs Issue with opt on dir and checks that it refuses,
// says whether a key and its certificate are unpaired, names mention, and
// writes nothing.
func expectRefused(t *testing.T, dir string, opt Options, unpaired bool, mention string) {
	t.Helper()
	before := snapshot(t, dir)
	written, err := Issue(opt)
	if err == nil {
		t.Fatalf("no error; wrote %v", written)
	}
	if unpaired != errors.Is(err, ErrUnpaired) {
		t.Errorf("errors.Is(%v, ErrUnpaired) = %v", err, !unpaired)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Errorf("error %q does not name %s", err, mention)
	}
	if len(written) != 0 {
		t.Errorf("wrote %v", written)
	}
	if after := snapshot(t, dir); !mapsEqual(before, after) {
		t.Error("the directory changed")
	}
}

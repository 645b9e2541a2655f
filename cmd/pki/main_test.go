package main

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"lottery/pki"
)

// runPKI runs the command in-process and returns its exit code and output.
func runPKI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRun_Help(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run("OK"+arg, func(t *testing.T) {
			code, stdout, stderr := runPKI(t, arg)
			if code != exitOK {
				t.Errorf("exit %d, want %d", code, exitOK)
			}
			if !strings.HasPrefix(stdout, "usage: pki -out DIR -agencies N") || stderr != "" {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}

func TestRun_ErrUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"UnknownFlag", []string{"-bogus"}},
		{"AgenciesNotANumber", []string{"-agencies", "five"}},
		{"AgenciesNegative", []string{"-agencies", "-1"}},
		{"AgenciesMissingValue", []string{"-agencies"}},
		{"Extra", []string{"-agencies", "2", "more"}},
		{"EmptyOut", []string{"-out", ""}},
		{"EmptyHosts", []string{"-hosts", ""}},
		{"EmptyHost", []string{"-hosts", "server,,localhost"}},
		{"EmptyRevoke", []string{"-revoke", ""}},
		{"RevokeAndAgencies", []string{"-revoke", "agency-1", "-agencies", "2"}},
		{"RevokeAndHosts", []string{"-revoke", "agency-1", "-hosts", "a"}},
		{"RevokeAndCentrals", []string{"-revoke", "agency-1", "-centrals", "3"}},
		{"RevokeAndLogOrigin", []string{"-revoke", "agency-1", "-log-origin", "x"}},
		{"EmptyLogOrigin", []string{"-log-origin", ""}},
		{"CentralsZero", []string{"-centrals", "0"}},
		{"CentralsTwo", []string{"-centrals", "2"}},
		{"CentralsFour", []string{"-centrals", "4"}},
		{"CentralsSix", []string{"-centrals", "6"}},
		{"CentralsNegative", []string{"-centrals", "-3"}},
		{"CentralsNotANumber", []string{"-centrals", "three"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pki")
			args := append([]string{"-out", dir}, tt.args...)
			code, stdout, stderr := runPKI(t, args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if stdout != "" || !strings.HasPrefix(stderr, "pki: ") || !strings.Contains(stderr, "usage: pki") {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("created the directory")
			}
		})
	}
}

func TestRun_Issue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".pki")
	code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "2")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var want []string
	for _, name := range []string{"ca.key", "ca.crt", "central.key", "central.crt", "agency-1.key", "agency-1.crt", "agency-2.key", "agency-2.crt", "log.key", "log.pub"} {
		want = append(want, "wrote "+filepath.Join(dir, name))
	}
	if !slices.Equal(lines[:len(lines)-1], want) {
		t.Errorf("stdout lines %q, want %q", lines, want)
	}
	if last := lines[len(lines)-1]; last != "wrote 10 files: "+dir+" holds the CA, the central, the log key and agencies 1…2" {
		t.Errorf("summary %q", last)
	}
	central, err := pki.ReadCertificate(filepath.Join(dir, pki.CentralCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(central.DNSNames, []string{"server", "localhost"}) || len(central.IPAddresses) != 1 {
		t.Errorf("central SANs %v %v, want the default hosts", central.DNSNames, central.IPAddresses)
	}

	t.Run("OKRerun", func(t *testing.T) {
		code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "2")
		if code != exitOK || stdout != "nothing to do: "+dir+" is complete\n" || stderr != "" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("OKMoreAgenciesAndHost", func(t *testing.T) {
		code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "3", "-hosts", "server, lottery.example")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s", code, stderr)
		}
		wantOut := "kept the previous " + filepath.Join(dir, "central.crt") + " as " + filepath.Join(dir, "central.crt") +
			".old-" + pki.FormatSerial(central.SerialNumber) + "\n" +
			"wrote " + filepath.Join(dir, "central.crt") + "\n" +
			"wrote " + filepath.Join(dir, "agency-3.key") + "\n" +
			"wrote " + filepath.Join(dir, "agency-3.crt") + "\n"
		if !strings.HasPrefix(stdout, wantOut) {
			t.Errorf("stdout %q, want it to start with %q", stdout, wantOut)
		}
		reissued, err := pki.ReadCertificate(filepath.Join(dir, pki.CentralCertFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := reissued.VerifyHostname("lottery.example"); err != nil {
			t.Error(err)
		}
		if err := reissued.VerifyHostname("127.0.0.1"); err != nil {
			t.Errorf("lost an old host: %v", err)
		}
	})
	t.Run("ErrIncomplete", func(t *testing.T) {
		if err := os.Rename(filepath.Join(dir, "agency-1.key"), filepath.Join(dir, "agency-1.key.bak")); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(filepath.Join(dir, "agency-1.key.bak"), filepath.Join(dir, "agency-1.key"))
		code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "3")
		if code != exitFailed || stdout != "" || !strings.Contains(stderr, "agency-1.key") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

func TestRun_Revoke(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runPKI(t, "-out", dir, "-agencies", "3"); code != exitOK {
		t.Fatalf("issue: exit %d, stderr %s", code, stderr)
	}
	listPath := filepath.Join(dir, pki.RevocationFile)
	certOf := func(name string) *x509.Certificate {
		t.Helper()
		cert, err := pki.ReadCertificate(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	tests := []struct {
		name    string
		arg     string
		cert    string // whose serial must then be listed
		already bool
	}{
		{"OKName", "agency-2", "agency-2.crt", false},
		{"OKAgain", "agency-2", "agency-2.crt", true},
		{"OKPath", filepath.Join(dir, "agency-3.crt"), "agency-3.crt", false},
		{"OKCentral", "central", "central.crt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPKI(t, "-out", dir, "-revoke", tt.arg)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %s", code, stderr)
			}
			cert := certOf(tt.cert)
			wantWord := "revoked "
			if tt.already {
				wantWord = "was already revoked in "
			}
			if !strings.Contains(stdout, wantWord) || !strings.Contains(stdout, pki.FormatSerial(cert.SerialNumber)) {
				t.Errorf("stdout %q", stdout)
			}
			list, err := pki.ReadRevocationList(listPath)
			if err != nil {
				t.Fatal(err)
			}
			if !list.Revoked(cert.SerialNumber) {
				t.Errorf("%s not on the list", tt.cert)
			}
		})
	}
	list, err := pki.ReadRevocationList(listPath)
	if err != nil {
		t.Fatal(err)
	}
	if list.Len() != 3 || list.Revoked(certOf("agency-1.crt").SerialNumber) {
		t.Errorf("list has %d serials, want agency-2, agency-3 and central", list.Len())
	}
	data, _ := os.ReadFile(listPath)
	wantLine := pki.FormatSerial(certOf("agency-2.crt").SerialNumber) + " # agency-2, revoked " + time.Now().UTC().Format(time.DateOnly) + "\n"
	if !strings.HasPrefix(string(data), wantLine) {
		t.Errorf("list %q, want it to start with %q", data, wantLine)
	}
}

func TestRun_ErrRevoke(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, other} {
		if code, _, stderr := runPKI(t, "-out", d, "-agencies", "1"); code != exitOK {
			t.Fatalf("issue: exit %d, stderr %s", code, stderr)
		}
	}
	tests := []struct {
		name string
		arg  string
		want string // in stderr
	}{
		{"ErrNoSuchAgency", "agency-9", "agency-9.crt"},
		{"ErrNotACert", filepath.Join(dir, "agency-1.key"), "no CERTIFICATE"},
		{"ErrOtherCA", filepath.Join(other, "agency-1.crt"), "was not signed by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPKI(t, "-out", dir, "-revoke", tt.arg)
			if code != exitFailed || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d naming %q", code, stdout, stderr, exitFailed, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, pki.RevocationFile)); err == nil {
				t.Error("created the list")
			}
		})
	}
}

// TestRun_IssueCentrals: -centrals 3 issues the nodes' keys and
// certificates, a rerun nothing, -centrals 5 only server4 and server5, and
// a node's certificate can be revoked by its name.
func TestRun_IssueCentrals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".pki")
	code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "1", "-centrals", "3")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	var want []string
	for _, name := range []string{"ca.key", "ca.crt", "central.key", "central.crt",
		"central-server1.key", "central-server1.crt", "central-server2.key", "central-server2.crt",
		"central-server3.key", "central-server3.crt", "agency-1.key", "agency-1.crt", "log.key", "log.pub"} {
		want = append(want, "wrote "+filepath.Join(dir, name))
	}
	want = append(want, "wrote 14 files: "+dir+" holds the CA, the central, its nodes server1…server3, the log key and agency 1")
	if got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("stdout lines %q, want %q", got, want)
	}
	ca, err := pki.ReadCertificate(filepath.Join(dir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"server1", "server2", "server3"} {
		node, err := pki.ReadCertificate(filepath.Join(dir, pki.NodeCertFile(name)))
		if err != nil {
			t.Fatal(err)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := node.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s for %v: %v", name, usage, err)
			}
		}
		if len(node.URIs) != 1 || node.URIs[0].String() != pki.CentralURI(name).String() {
			t.Errorf("%s URIs %v", name, node.URIs)
		}
	}

	t.Run("OKRerun", func(t *testing.T) {
		for _, k := range []string{"3", "1"} {
			code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "1", "-centrals", k)
			if code != exitOK || stdout != "nothing to do: "+dir+" is complete\n" || stderr != "" {
				t.Errorf("-centrals %s: exit %d, stdout %q, stderr %q", k, code, stdout, stderr)
			}
		}
	})
	t.Run("OKFive", func(t *testing.T) {
		code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "1", "-centrals", "5")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s", code, stderr)
		}
		var want []string
		for _, name := range []string{"central-server4.key", "central-server4.crt", "central-server5.key", "central-server5.crt"} {
			want = append(want, "wrote "+filepath.Join(dir, name))
		}
		if got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"); !slices.Equal(got[:len(got)-1], want) {
			t.Errorf("stdout lines %q, want %q", got, want)
		}
	})
	t.Run("OKRevokeNode", func(t *testing.T) {
		code, stdout, stderr := runPKI(t, "-out", dir, "-revoke", "central-server2")
		if code != exitOK || !strings.Contains(stdout, "revoked "+filepath.Join(dir, "central-server2.crt")) {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

// TestRun_IssueLogKey: the log key is issued with the rest, named by
// -log-origin, never replaced, and added to a directory issued before it
// existed.
func TestRun_IssueLogKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".pki")
	if code, _, stderr := runPKI(t, "-out", dir, "-agencies", "1", "-log-origin", "example.org/draws"); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	v, err := pki.ReadLogVerifier(filepath.Join(dir, pki.LogPubFile))
	if err != nil || v.Name() != "example.org/draws" {
		t.Fatalf("log.pub: verifier %v, err %v", v, err)
	}

	t.Run("OKRerunWithoutOrigin", func(t *testing.T) {
		code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "1")
		if code != exitOK || stdout != "nothing to do: "+dir+" is complete\n" || stderr != "" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("ErrOtherOrigin", func(t *testing.T) {
		code, _, stderr := runPKI(t, "-out", dir, "-agencies", "1", "-log-origin", "other")
		if code != exitFailed || !strings.Contains(stderr, "never replaced") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("ErrBadOrigin", func(t *testing.T) {
		code, _, stderr := runPKI(t, "-out", t.TempDir(), "-agencies", "0", "-log-origin", "with+plus")
		if code != exitFailed || !strings.Contains(stderr, "with+plus") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("OKAddedToAnOlderDirectory", func(t *testing.T) {
		for _, name := range []string{pki.LogKeyFile, pki.LogPubFile} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		code, stdout, stderr := runPKI(t, "-out", dir, "-agencies", "1")
		want := "wrote " + filepath.Join(dir, pki.LogKeyFile) + "\nwrote " + filepath.Join(dir, pki.LogPubFile) + "\n"
		if code != exitOK || !strings.HasPrefix(stdout, want) {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if _, err := pki.ReadLogSigner(filepath.Join(dir, pki.LogKeyFile)); err != nil {
			t.Error(err)
		}
	})
}

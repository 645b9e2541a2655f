package testutil

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"lottery/pki"
)

// The test PKI: one CA per test binary, in a temporary directory, with the
// central's certificate and as many agencies' as the tests ask for.
var (
	pkiMu       sync.Mutex
	pkiDir      string
	pkiAgencies int
	pkiNodes    bool
)

// PKI returns a directory holding the lottery's CA, the central's key and
// certificate and those of agencies 1…agencies (issued on first need with
// pki.Issue, as bin/pki would). RemoveBinaries deletes it.
func PKI(t testing.TB, agencies int) string {
	t.Helper()
	pkiMu.Lock()
	defer pkiMu.Unlock()
	if pkiDir == "" {
		dir, err := os.MkdirTemp(os.TempDir(), "lottery-pki-")
		if err != nil {
			t.Fatalf("testutil: PKI: %v", err)
		}
		pkiDir = filepath.Join(dir, ".pki")
	}
	if agencies > pkiAgencies || pkiAgencies == 0 {
		if _, err := pki.Issue(pki.Options{Dir: pkiDir, Agencies: max(agencies, pkiAgencies, 1)}); err != nil {
			t.Fatalf("testutil: PKI: %v", err)
		}
		if _, err := pki.IssueLogKey(pkiDir, pki.DefaultLogOrigin); err != nil {
			t.Fatalf("testutil: PKI: %v", err)
		}
		pkiAgencies = max(agencies, pkiAgencies, 1)
	}
	return pkiDir
}

// ServerTLSEnv returns the central's TLS variables for the test PKI.
func ServerTLSEnv(t testing.TB) map[string]string {
	dir := PKI(t, 0)
	return map[string]string{
		"TLS_CERT":      filepath.Join(dir, pki.CentralCertFile),
		"TLS_KEY":       filepath.Join(dir, pki.CentralKeyFile),
		"TLS_CLIENT_CA": filepath.Join(dir, pki.CAFile),
		"LOG_KEY":       filepath.Join(dir, pki.LogKeyFile),
	}
}

// NodeTLSEnv returns the TLS variables of node name (server1 … server3) of
// a replicated central, issuing the three nodes' certificates on first
// need, as `bin/pki -centrals 3` does.
func NodeTLSEnv(t testing.TB, name string) map[string]string {
	dir := PKI(t, 0)
	pkiMu.Lock()
	if !pkiNodes {
		if _, err := pki.Issue(pki.Options{Dir: dir, Agencies: max(pkiAgencies, 1), Centrals: 3}); err != nil {
			pkiMu.Unlock()
			t.Fatalf("testutil: PKI: %v", err)
		}
		pkiNodes = true
	}
	pkiMu.Unlock()
	return map[string]string{
		"TLS_CERT":      filepath.Join(dir, pki.NodeCertFile(name)),
		"TLS_KEY":       filepath.Join(dir, pki.NodeKeyFile(name)),
		"TLS_CLIENT_CA": filepath.Join(dir, pki.CAFile),
		"LOG_KEY":       filepath.Join(dir, pki.LogKeyFile),
	}
}

// ClientTLSEnv returns agency id's TLS variables for the test PKI.
func ClientTLSEnv(t testing.TB, id int) map[string]string {
	dir := PKI(t, id)
	return map[string]string{
		"CLI_TLS_CERT":  filepath.Join(dir, pki.AgencyCertFile(id)),
		"CLI_TLS_KEY":   filepath.Join(dir, pki.AgencyKeyFile(id)),
		"CLI_TLS_CA":    filepath.Join(dir, pki.CAFile),
		"CLI_AUDIT_KEY": filepath.Join(dir, pki.LogPubFile),
	}
}

// withTLS adds the test PKI's variables to env unless the test chose its
// own: TLS is set (on or off), or the files are named already. A client's
// identity is its CLI_ID.
func withTLS(t testing.TB, env map[string]string, server bool) map[string]string {
	out := make(map[string]string, len(env)+3)
	for k, v := range env {
		out[k] = v
	}
	var add map[string]string
	switch {
	case server:
		if _, set := env["TLS"]; set {
			return out
		}
		add = ServerTLSEnv(t)
	default:
		if _, set := env["CLI_TLS"]; set {
			return out
		}
		id, err := strconv.Atoi(env["CLI_ID"])
		if err != nil || id < 1 {
			return out // a bad CLI_ID is what the test is about
		}
		add = ClientTLSEnv(t, id)
	}
	for k, v := range add {
		if _, set := out[k]; !set {
			out[k] = v
		}
	}
	return out
}

func removePKI() {
	pkiMu.Lock()
	defer pkiMu.Unlock()
	if pkiDir != "" {
		os.RemoveAll(filepath.Dir(pkiDir))
	}
}

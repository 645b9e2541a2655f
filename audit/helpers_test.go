package audit_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"lottery/internal/testutil"
)

// testOrigin is the log's name in every test.
const testOrigin = "loteria.nacional/apuestas"

// testKey returns a key pair named origin drawn from seed: the same bytes
// every run, so signed notes can be pinned by golden files.
func testKey(t testing.TB, origin string, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	return testutil.LogKeys(t, origin, seed)
}

// memSink is a receipts file in memory.
type memSink struct {
	bytes.Buffer
	syncs int
}

func (m *memSink) Sync() error { m.syncs++; return nil }

// hashOf is a hash for tests: SHA-256 of s.
func hashOf(s string) tlog.Hash { return tlog.Hash(sha256.Sum256([]byte(s))) }

// hashOfBytes is SHA-256 of b.
func hashOfBytes(b []byte) [32]byte { return sha256.Sum256(b) }

package testutil

import (
	"bytes"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// LogKeys returns an audit log key pair named origin (pki.DefaultLogOrigin
// as bin/pki names it, or another), drawn from seed: the same key every run,
// so signed notes (Ed25519 signatures are deterministic) can be pinned by
// golden files, and two seeds give two keys of one name.
func LogKeys(t testing.TB, origin string, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return signer, verifier
}

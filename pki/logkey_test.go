package pki

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestIssueLogKey_OK(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".pki")
	written, err := IssueLogKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath := filepath.Join(dir, LogKeyFile), filepath.Join(dir, LogPubFile)
	if !slices.Equal(written, []string{keyPath, pubPath}) {
		t.Errorf("written %q, want the key then the public key", written)
	}
	for path, mode := range map[string]os.FileMode{keyPath: keyMode, pubPath: certMode, dir: dirMode} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	signer, err := ReadLogSigner(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := ReadLogVerifier(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if signer.Name() != DefaultLogOrigin || verifier.Name() != DefaultLogOrigin || signer.KeyHash() != verifier.KeyHash() {
		t.Errorf("signer %s+%08x, verifier %s+%08x", signer.Name(), signer.KeyHash(), verifier.Name(), verifier.KeyHash())
	}
	msg := []byte("a checkpoint\n")
	sig, err := signer.Sign(msg)
	if err != nil || !verifier.Verify(msg, sig) {
		t.Errorf("log.pub does not verify what log.key signs (%v)", err)
	}
	pub, _ := os.ReadFile(pubPath)
	if strings.Contains(string(pub), "PRIVATE") || !strings.HasPrefix(string(pub), DefaultLogOrigin+"+") {
		t.Errorf("log.pub is %q", pub)
	}

	t.Run("OKRerunWritesNothing", func(t *testing.T) {
		before := snapshot(t, dir)
		for _, origin := range []string{"", DefaultLogOrigin} {
			written, err := IssueLogKey(dir, origin)
			if err != nil || len(written) != 0 {
				t.Errorf("origin %q: written %q, err %v", origin, written, err)
			}
		}
		if !mapsEqual(before, snapshot(t, dir)) {
			t.Error("a rerun changed the directory")
		}
	})
}

func TestIssueLogKey_OKOrigin(t *testing.T) {
	dir := t.TempDir()
	if _, err := IssueLogKey(dir, "example.org/lottery"); err != nil {
		t.Fatal(err)
	}
	v, err := ReadLogVerifier(filepath.Join(dir, LogPubFile))
	if err != nil || v.Name() != "example.org/lottery" {
		t.Fatalf("verifier %v, err %v", v, err)
	}
}

func TestIssueLogKey_Err(t *testing.T) {
	issued := func(t *testing.T) string {
		t.Helper()
		dir := t.TempDir()
		if _, err := IssueLogKey(dir, ""); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name     string
		prepare  func(t *testing.T) string // returns the directory
		origin   string
		unpaired bool
		mention  string
	}{
		{"ErrBadOrigin", func(t *testing.T) string { return t.TempDir() }, "has space", false, "has space"},
		{"ErrPlusInOrigin", func(t *testing.T) string { return t.TempDir() }, "a+b", false, "a+b"},
		{"ErrLoneKey", func(t *testing.T) string {
			dir := issued(t)
			os.Remove(filepath.Join(dir, LogPubFile))
			return dir
		}, "", true, LogPubFile},
		{"ErrLonePub", func(t *testing.T) string {
			dir := issued(t)
			os.Remove(filepath.Join(dir, LogKeyFile))
			return dir
		}, "", true, LogKeyFile},
		{"ErrMixedPair", func(t *testing.T) string {
			dir, other := issued(t), issued(t)
			data, _ := os.ReadFile(filepath.Join(other, LogPubFile))
			os.Remove(filepath.Join(dir, LogPubFile))
			writeFile(t, filepath.Join(dir, LogPubFile), data)
			return dir
		}, "", true, LogPubFile},
		{"ErrOtherOrigin", issued, "other.origin", false, "never replaced"},
		{"ErrGarbledKey", func(t *testing.T) string {
			dir := issued(t)
			os.Remove(filepath.Join(dir, LogKeyFile))
			writeFile(t, filepath.Join(dir, LogKeyFile), []byte("PRIVATE+KEY+garbled\n"))
			return dir
		}, "", false, "not a note signer key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.prepare(t)
			before := snapshot(t, dir)
			written, err := IssueLogKey(dir, tt.origin)
			if err == nil || len(written) != 0 {
				t.Fatalf("written %q, err %v: want an error", written, err)
			}
			if errors.Is(err, ErrUnpaired) != tt.unpaired || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("err %v: want unpaired %v, naming %q", err, tt.unpaired, tt.mention)
			}
			if !mapsEqual(before, snapshot(t, dir)) {
				t.Error("a refused issue changed the directory")
			}
		})
	}
}

func TestReadLogKey_Err(t *testing.T) {
	dir := t.TempDir()
	if _, err := IssueLogKey(dir, ""); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two-lines")
	pub, _ := os.ReadFile(filepath.Join(dir, LogPubFile))
	writeFile(t, two, append(pub, pub...))
	big := filepath.Join(dir, "big")
	writeFile(t, big, []byte(strings.Repeat("a", maxLogKeyFileSize+1)))
	tests := []struct {
		name string
		read func() error
	}{
		{"ErrMissing", func() error { _, err := ReadLogVerifier(filepath.Join(dir, "none")); return err }},
		{"ErrTwoLines", func() error { _, err := ReadLogVerifier(two); return err }},
		{"ErrTooBig", func() error { _, err := ReadLogSigner(big); return err }},
		{"ErrPubAsSigner", func() error { _, err := ReadLogSigner(filepath.Join(dir, LogPubFile)); return err }},
		{"ErrKeyAsVerifier", func() error { _, err := ReadLogVerifier(filepath.Join(dir, LogKeyFile)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.read(); err == nil {
				t.Error("no error")
			}
		})
	}
}

package pki

import (
	"crypto/rand"
	"fmt"
	"lottery/internal/fsutil"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// The log key signs the central's checkpoints and the draw statement
// (package audit): an Ed25519 key in golang.org/x/mod/sumdb/note's text
// form, whose name is the log's origin. It is not an X.509 key: agencies
// and auditors verify signed notes with log.pub alone, no CA involved, and
// log.pub can be published anywhere.
const (
	LogKeyFile = "log.key" // the signer key, "PRIVATE+KEY+<origin>+<hash>+<key>"
	LogPubFile = "log.pub" // the verifier key, "<origin>+<hash>+<key>"
	// DefaultLogOrigin names the log in every checkpoint and statement. A
	// note key name has no spaces and no '+'.
	DefaultLogOrigin = "loteria.nacional/apuestas"
	// maxLogKeyFileSize bounds what is read from log.key or log.pub: ours
	// are under 200 bytes.
	maxLogKeyFileSize = 4096
)

// IssueLogKey writes dir/log.key (0600) and dir/log.pub (0644), a new key
// pair named origin ("" = DefaultLogOrigin), unless both exist; it returns
// the paths it wrote. Like Issue it never replaces a key: a lone half is
// ErrUnpaired, an existing pair that does not belong together or, when
// origin is given, is named otherwise is an error, and a new pair is written
// synced, key first, through the same temporary-file-and-link as every PKI
// file, then the directory is synced.
func IssueLogKey(dir, origin string) (written []string, err error) {
	if dir == "" {
		return nil, fmt.Errorf("pki: no directory given")
	}
	keyPath, pubPath := filepath.Join(dir, LogKeyFile), filepath.Join(dir, LogPubFile)
	hasKey, err := fileExists(keyPath)
	if err != nil {
		return nil, err
	}
	hasPub, err := fileExists(pubPath)
	if err != nil {
		return nil, err
	}
	switch {
	case hasKey && hasPub:
		return nil, checkLogKeyPair(keyPath, pubPath, origin)
	case hasKey:
		return nil, fmt.Errorf("%w: %s exists but %s does not: restore it (a log key is never replaced: agencies and auditors hold its public half)",
			ErrUnpaired, keyPath, pubPath)
	case hasPub:
		return nil, fmt.Errorf("%w: %s exists but %s does not: restore it (a new key would not verify what the old one signed)",
			ErrUnpaired, pubPath, keyPath)
	}
	if origin == "" {
		origin = DefaultLogOrigin
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, fmt.Errorf("pki: generate the log key: %w", err)
	}
	if _, err := note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("pki: log origin %q: %w (a name has no spaces and no '+')", origin, err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	d := &pkiDir{path: dir}
	defer func() {
		written = d.written
		if len(d.written) > 0 {
			if serr := fsutil.SyncDir(dir); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	if err := d.writeNew(LogKeyFile, []byte(skey+"\n"), keyMode); err != nil {
		return nil, err
	}
	return nil, d.writeNew(LogPubFile, []byte(vkey+"\n"), certMode)
}

// checkLogKeyPair fails unless the key at keyPath signs what the key at
// pubPath verifies, and, when origin is not empty, is named origin.
func checkLogKeyPair(keyPath, pubPath, origin string) error {
	signer, err := ReadLogSigner(keyPath)
	if err != nil {
		return err
	}
	verifier, err := ReadLogVerifier(pubPath)
	if err != nil {
		return err
	}
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		return fmt.Errorf("%w: %s (%s+%08x) and %s (%s+%08x) are not one key", ErrUnpaired,
			keyPath, signer.Name(), signer.KeyHash(), pubPath, verifier.Name(), verifier.KeyHash())
	}
	const probe = "lottery log key pair check\n"
	sig, err := signer.Sign([]byte(probe))
	if err != nil || !verifier.Verify([]byte(probe), sig) {
		return fmt.Errorf("%w: %s does not verify what %s signs", ErrUnpaired, pubPath, keyPath)
	}
	if origin != "" && signer.Name() != origin {
		return fmt.Errorf("pki: %s is the key of the log %q, not %q: a log key is never replaced", keyPath, signer.Name(), origin)
	}
	return nil
}

// ReadLogSigner reads the log's signer key (log.key).
func ReadLogSigner(path string) (note.Signer, error) {
	text, err := readLogKeyFile(path)
	if err != nil {
		return nil, err
	}
	s, err := note.NewSigner(text)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: not a note signer key: %w", path, err)
	}
	return s, nil
}

// ReadLogVerifier reads the log's verifier key (log.pub), what agencies
// and auditors check signatures with.
func ReadLogVerifier(path string) (note.Verifier, error) {
	text, err := readLogKeyFile(path)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(text)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: not a note verifier key: %w", path, err)
	}
	return v, nil
}

// readLogKeyFile reads a one-line key file, without its line ending.
func readLogKeyFile(path string) (string, error) {
	data, err := readFileLimited(path, maxLogKeyFileSize)
	if err != nil {
		return "", err
	}
	text := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if strings.ContainsAny(text, "\r\n") {
		return "", fmt.Errorf("pki: %s: a key file holds one line", path)
	}
	return text, nil
}

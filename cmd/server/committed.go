package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"lottery/audit"
	"lottery/internal/fsutil"
	"lottery/logline"
	"lottery/storage"
)

// The committed mode (DRAW_NUMBER=committed, docs/audit.md): before any bet
// the central draws a secret, keeps it beside the bets file and stores its
// commitment as the journal's record 1 (the audit log's leaf 1); the draw's
// number comes from the secret and the final tree, and the statement
// reveals the secret.
const (
	drawCourse    = "course"    // the course's 7574
	drawCommitted = "committed" // drawn from a committed secret
)

// secretSuffix names the secret's file beside the bets file: 0600, synced
// before its commitment is stored, never replaced.
const secretSuffix = ".secreto"

// commitDraw readies the committed mode on store: the secret of a draw
// already committed to (its file must be there and match the journal's
// commitment), or a new one, written and synced before its commitment is
// stored, on a journal that holds no batch yet. It says which in a line.
func commitDraw(storagePath string, store *storage.Store, log *slog.Logger) ([]byte, error) {
	path := storagePath + secretSuffix
	secret, err := readSecret(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	committed, ok := store.Commitment()
	switch {
	case ok && secret == nil:
		return nil, fmt.Errorf("the journal commits to a secret, but %s is missing: the draw cannot be revealed", path)
	case ok && audit.Commitment(secret) != committed:
		return nil, fmt.Errorf("%s is not the secret the journal commits to", path)
	case ok:
		log.Info(logline.Commitment, logline.OK, "compromiso", base64.StdEncoding.EncodeToString(committed[:]), "nuevo", false, "archivo", path)
		return secret, nil
	}
	select {
	case <-store.Failed():
		return nil, store.Err()
	default:
	}
	fresh := secret == nil
	if fresh { // a secret left by a start that stopped before committing is kept
		if secret, err = audit.NewSecret(rand.Reader); err != nil {
			return nil, err
		}
		if err := fsutil.CreateSynced(path, secret, 0o600); err != nil {
			return nil, fmt.Errorf("write the secret: %w", err)
		}
		if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("write the secret: %w", err)
		}
	}
	c := audit.Commitment(secret)
	if err := store.Commit(c).Wait(); err != nil {
		return nil, fmt.Errorf("commit to the draw's secret (DRAW_NUMBER=committed needs a journal without bets): %w", err)
	}
	log.Info(logline.Commitment, logline.OK, "compromiso", base64.StdEncoding.EncodeToString(c[:]), "nuevo", fresh, "archivo", path)
	return secret, nil
}

// readSecret reads the secret's file, nil if there is none.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < audit.MinSecretSize || len(b) > audit.MaxSecretSize {
		return nil, fmt.Errorf("%s holds %d bytes, not a secret (%d to %d)", path, len(b), audit.MinSecretSize, audit.MaxSecretSize)
	}
	return b, nil
}

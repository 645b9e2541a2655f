package storage_test

import (
	"path/filepath"
	"strings"
	"testing"

	"lottery/storage"
)

func TestOpen_ErrInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	first, _, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := storage.Open(path, storage.Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open of a store in use: err = %v, want an in-use error", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, _, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

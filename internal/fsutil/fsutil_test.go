package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// checkOnly fails the test unless dir holds name with content want and
// nothing else: no temporary file is left behind.
func checkOnly(t *testing.T, dir, name, want string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		t.Errorf("%s holds %v, want only %s", dir, entries, name)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Errorf("%s holds %q, want %q", name, data, want)
	}
}

func TestWriteFileSynced(t *testing.T) {
	tests := []struct {
		name string
		old  *string // the file's content before, nil = no file
		data string
	}{
		{"OKNew", nil, "data"},
		{"OKTruncates", ptr("a longer old content"), "new"},
		{"OKEmpty", ptr("old"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.old != nil {
				if err := os.WriteFile(path, []byte(*tt.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFileSynced(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			checkOnly(t, dir, "f", tt.data)
		})
	}
	t.Run("ErrNoDir", func(t *testing.T) {
		err := WriteFileSynced(filepath.Join(t.TempDir(), "none", "f"), []byte("x"), 0o600)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err %v, want fs.ErrNotExist", err)
		}
	})
}

func ptr(s string) *string { return &s }

func TestCreateSynced(t *testing.T) {
	for _, perm := range []os.FileMode{0o600, 0o640, 0o644} {
		t.Run(fmt.Sprintf("OK/%o", perm), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "a.key")
			if err := CreateSynced(path, []byte("secret"), perm); err != nil {
				t.Fatal(err)
			}
			checkOnly(t, dir, "a.key", "secret")
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != perm {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), perm)
			}
		})
	}
	t.Run("ErrExists", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.crt")
		if err := os.WriteFile(path, []byte("first"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := CreateSynced(path, []byte("second"), 0o644)
		if !errors.Is(err, fs.ErrExist) {
			t.Errorf("err %v, want fs.ErrExist", err)
		}
		checkOnly(t, dir, "a.crt", "first")
	})
	t.Run("ErrNoDir", func(t *testing.T) {
		err := CreateSynced(filepath.Join(t.TempDir(), "none", "f"), []byte("x"), 0o600)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err %v, want fs.ErrNotExist", err)
		}
	})
}

func TestSyncDir(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		if err := SyncDir(t.TempDir()); err != nil {
			t.Error(err)
		}
	})
	t.Run("ErrNoDir", func(t *testing.T) {
		if err := SyncDir(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err %v, want fs.ErrNotExist", err)
		}
	})
}

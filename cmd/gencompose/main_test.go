package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lottery/compose"
)

func TestRun_OK(t *testing.T) {
	out := filepath.Join(t.TempDir(), "docker-compose-dev.yaml")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{out, "3"}, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := compose.Write(&want, compose.Options{Agencies: 3}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("file:\n%s\nwant:\n%s", got, want.Bytes())
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("left %d files in the directory, want only the output", len(entries))
	}
}

func TestRun_ErrUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"NoArgs", nil},
		{"MissingN", []string{"OUT"}},
		{"NotANumber", []string{"OUT", "five"}},
		{"Negative", []string{"OUT", "-1"}},
		{"Plus", []string{"OUT", "+3"}},
		{"Decimal", []string{"OUT", "2.5"}},
		{"Space", []string{"OUT", " 3"}},
		{"Empty", []string{"OUT", ""}},
		{"TooMany", []string{"OUT", "99999999999999999999"}},
		{"Extra", []string{"OUT", "3", "4"}},
		{"EmptyName", []string{"", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "compose.yaml")
			if err := os.WriteFile(out, []byte("untouched"), 0o644); err != nil {
				t.Fatal(err)
			}
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "OUT", out)
			}
			var stderr bytes.Buffer
			if code := run(args, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr.String(), "usage: generar-compose.sh <output-file> <N>") {
				t.Errorf("stderr has no usage:\n%s", stderr.String())
			}
			if got, _ := os.ReadFile(out); string(got) != "untouched" {
				t.Errorf("output file changed to %q", got)
			}
		})
	}
}

func TestRun_ErrWrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "missing-dir", "compose.yaml")
	var stderr bytes.Buffer
	if code := run([]string{out, "1"}, &stderr); code != exitFailed {
		t.Errorf("exit %d, want %d (stderr %s)", code, exitFailed, stderr.String())
	}
}

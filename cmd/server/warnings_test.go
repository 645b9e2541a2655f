package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"lottery/internal/testutil"
)

// TestLoadConfig_Warnings: the repository's config.ini (whose blank
// SERVER_IP means all addresses) reads without a warning; a blank value
// that falls back to a default, an unknown key and a key outside [DEFAULT]
// each warn, naming the key; a key set twice is an error.
func TestLoadConfig_Warnings(t *testing.T) {
	repo, err := os.ReadFile("../../server/config.ini")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		ini  string
		want []string // the keys warned about, in order
		err  string
	}{
		{"OK/Repository", string(repo), nil, ""},
		{"Blank", "[DEFAULT]\nSERVER_PORT =\nSERVER_IP =\nTLS_CRL =\nAGENCIES = \n", []string{"SERVER_PORT", "AGENCIES"}, ""},
		{"Unknown", "[DEFAULT]\nSERVER_PORTS = 1\nAGENCIAS = 3\n", []string{"AGENCIAS", "SERVER_PORTS"}, ""},
		{"OtherSection", "[DEFAULT]\nAGENCIES = 3\n[server]\nSERVER_PORT = 1\n", []string{"[server] SERVER_PORT"}, ""},
		{"ErrDuplicate", "[DEFAULT]\nAGENCIES = 3\nAGENCIES = 4\n", nil, "AGENCIES is set again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.WriteFile(t, "config.ini", tt.ini)
			c, err := loadConfig("config.ini", testutil.EnvLookup(nil))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, w := range c.Warnings {
				keys = append(keys, w.Key)
			}
			if !slices.Equal(keys, tt.want) {
				t.Fatalf("warnings %v, want about %v", c.Warnings, tt.want)
			}
		})
	}
}

// TestRun_ConfigWarnings: each warning is a WARNING config line naming the
// key, and the central goes on.
func TestRun_ConfigWarnings(t *testing.T) {
	t.Chdir(t.TempDir())
	testutil.WriteFile(t, "config.ini", "[DEFAULT]\nAGENCIAS = 3\n")
	var out bytes.Buffer
	// An address that cannot be listened on, so that run returns.
	if code := run(&out, testutil.EnvLookup(map[string]string{"TLS": "off", "SERVER_IP": "256.0.0.1"})); code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, out.String())
	}
	l, ok := testutil.FindOne(testutil.Lines(out.String()), "config", "in_progress")
	if !ok || l.Level != "WARNING" || l.Get("key") != "AGENCIAS" || !strings.Contains(l.Get("warning"), "unknown key") {
		t.Fatalf("no WARNING config line about AGENCIAS:\n%s", out.String())
	}
}

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestRun_HelpSpellings: every spelling of the help flag prints the usage
// and exits 0, writing nothing.
func TestRun_HelpSpellings(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"-h", "out.yaml", "3"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Chdir(t.TempDir())
			var stderr bytes.Buffer
			if code := run(args, &stderr); code != exitOK {
				t.Fatalf("exit %d, want %d", code, exitOK)
			}
			if !strings.HasPrefix(stderr.String(), "usage: generar-compose.sh") {
				t.Fatalf("not the usage:\n%s", stderr.String())
			}
			if entries, _ := os.ReadDir("."); len(entries) > 0 {
				t.Fatalf("-h wrote %v", entries)
			}
		})
	}
}

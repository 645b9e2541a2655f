package main

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// TestTerminalBar: only a terminal (a character device) gets a progress
// bar; a buffer, a pipe or a file get the log lines alone.
func TestTerminalBar(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	file, err := os.Create(t.TempDir() + "/out.log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	tests := []struct {
		name string
		out  io.Writer
		bar  bool
	}{
		{"Buffer", new(bytes.Buffer), false},
		{"Pipe", w, false},
		{"File", file, false},
		{"CharacterDevice", null, true}, // as a terminal is; drawing on /dev/null costs nothing
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := terminalBar(tt.out) != nil; got != tt.bar {
				t.Errorf("bar %v, want %v", got, tt.bar)
			}
		})
	}
}

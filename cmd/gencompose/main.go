// Command gencompose writes the Docker Compose file for the central and N
// agencies: gencompose <output-file> <N>. generar-compose.sh calls it.
//
// The mounts in the file are relative to the file's directory, so write it
// at the repository root. The output file is replaced atomically and only
// when the arguments are valid: a bad call never touches it.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"lottery/compose"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the file could not be written
	exitUsage  = 2 // bad arguments: nothing was written
)

const usage = `usage: generar-compose.sh <output-file> <N>
  Writes a Docker Compose file with the central ("server") and N agencies
  ("client1" … "clientN"), N a whole number from 0 to %d.
  Write it at the repository root: its volumes are relative to it.
  example: ./generar-compose.sh docker-compose-dev.yaml 5
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	out, n, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "gencompose: %v\n", err)
		fmt.Fprintf(stderr, usage, compose.MaxAgencies)
		return exitUsage
	}
	var buf bytes.Buffer
	if err := compose.Write(&buf, compose.Options{Agencies: n}); err != nil {
		fmt.Fprintf(stderr, "gencompose: %v\n", err)
		return exitFailed
	}
	if err := writeFile(out, buf.Bytes()); err != nil {
		fmt.Fprintf(stderr, "gencompose: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// parseArgs checks <output-file> <N>: exactly two arguments, N made of
// digits only (no sign, no spaces) and within range.
func parseArgs(args []string) (string, int, error) {
	if len(args) != 2 {
		return "", 0, fmt.Errorf("want 2 arguments, got %d", len(args))
	}
	out, s := args[0], args[1]
	if out == "" {
		return "", 0, fmt.Errorf("empty output file name")
	}
	if s == "" {
		return "", 0, fmt.Errorf("N is empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return "", 0, fmt.Errorf("N must be a whole number ≥ 0, got %q", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > compose.MaxAgencies {
		return "", 0, fmt.Errorf("N must be at most %d, got %q", compose.MaxAgencies, s)
	}
	return out, n, nil
}

// writeFile replaces path with data atomically: a temporary file in the
// same directory, then a rename.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

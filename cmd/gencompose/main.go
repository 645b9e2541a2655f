// Command gencompose writes the Docker Compose file for the central and N
// agencies: gencompose [-tls=false] [-keep] <output-file> <N>.
// generar-compose.sh calls it.
//
// The mounts in the file are relative to the file's directory, so write it
// at the repository root. With TLS on (the default) it first makes sure the
// PKI the file mounts is there and usable: .pki/ next to the output file,
// with the CA, the central and agencies 1…N (pki.Issue, what bin/pki runs:
// it adds what is missing and never replaces a key), and central.key
// readable by the central's user in its image (compose.ShareCentralKey),
// which is not root. The output file is replaced atomically and only when
// the arguments are valid: a bad call never touches it, nor the PKI. With
// -keep an existing output file is left as it is and only the PKI is seen
// to (make docker-compose-up).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"lottery/compose"
	"lottery/pki"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the file could not be written
	exitUsage  = 2 // bad arguments: nothing was written
)

// pkiDir is where the PKI goes, relative to the output file's directory:
// the file mounts ./.pki/… from there.
const pkiDir = ".pki"

const usage = `usage: generar-compose.sh <output-file> <N>
       generar-compose.sh -tls=false <output-file> <N>
       generar-compose.sh -keep <output-file> <N>
  Writes a Docker Compose file with the central ("server") and N agencies
  ("client1" … "clientN"), N a whole number from 0 to %d.
  Write it at the repository root: its volumes are relative to it.
  The central's bets file and journal go on the named volume
  lottery_central_data: down and up keep them, down -v removes them.
  With TLS (the default) it first issues what is missing of .pki/ next to
  the file (CA, central, agencies 1…N), lets the central's user (uid %d)
  read central.key, and mounts into each container only its own key and
  certificate plus ca.crt; the CA's key is mounted nowhere.
  -tls=false: TLS off on both sides (TLS=off, CLI_TLS=off), no keys
  mounted: only for the course's bare exercises.
  -keep: leave an existing output file as it is; .pki/ is still brought
  up to date for N agencies (make docker-compose-up runs this).
  example: ./generar-compose.sh docker-compose-dev.yaml 5
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// request is what a valid call asks for.
type request struct {
	out  string // the output file
	keep bool   // leave out as it is when it exists
	opt  compose.Options
}

func run(args []string, stderr io.Writer) int {
	req, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, usage, compose.MaxAgencies, compose.CentralUID)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "gencompose: %v\n", err)
		fmt.Fprintf(stderr, usage, compose.MaxAgencies, compose.CentralUID)
		return exitUsage
	}
	if err := generate(req, stderr); err != nil {
		fmt.Fprintf(stderr, "gencompose: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// parseArgs checks [-tls=false] [-keep] <output-file> <N>: exactly two
// arguments after the flags, N made of digits only (no sign, no spaces) and
// within range.
func parseArgs(args []string) (request, error) {
	fs := flag.NewFlagSet("gencompose", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints the usage
	useTLS := fs.Bool("tls", true, "mutual TLS: issue and mount the PKI")
	keep := fs.Bool("keep", false, "leave an existing output file as it is")
	if err := fs.Parse(args); err != nil {
		return request{}, err
	}
	args = fs.Args()
	if len(args) != 2 {
		return request{}, fmt.Errorf("want 2 arguments, got %d", len(args))
	}
	out, s := args[0], args[1]
	if out == "" {
		return request{}, fmt.Errorf("empty output file name")
	}
	if s == "" {
		return request{}, fmt.Errorf("N is empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return request{}, fmt.Errorf("N must be a whole number ≥ 0, got %q", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > compose.MaxAgencies {
		return request{}, fmt.Errorf("N must be at most %d, got %q", compose.MaxAgencies, s)
	}
	return request{out: out, keep: *keep, opt: compose.Options{Agencies: n, PlainText: !*useTLS}}, nil
}

// generate sees to the PKI the file mounts, if any, then writes the file
// (unless it is to be kept). It says on stderr what it changed in the PKI.
func generate(req request, stderr io.Writer) error {
	var buf bytes.Buffer
	if err := compose.Write(&buf, req.opt); err != nil {
		return err
	}
	if !req.opt.PlainText {
		if err := preparePKI(filepath.Dir(req.out), req.opt.Agencies, stderr); err != nil {
			return err
		}
	}
	if req.keep {
		if _, err := os.Stat(req.out); err == nil {
			return nil
		}
	}
	return writeFile(req.out, buf.Bytes())
}

// preparePKI adds to dir/.pki what is missing of the CA, the central and
// agencies 1…n, then lets the central's user read its key. The PKI goes
// beside the file only if the file can go there: a missing directory is an
// error, not something to create.
func preparePKI(dir string, n int, stderr io.Writer) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	p := filepath.Join(dir, pkiDir)
	written, err := pki.Issue(pki.Options{Dir: p, Agencies: n})
	if len(written) > 0 {
		fmt.Fprintf(stderr, "gencompose: issued %d keys and certificates in %s\n", len(written), p)
	}
	if err != nil {
		return fmt.Errorf("the PKI in %s: %w", p, err)
	}
	access, err := compose.ShareCentralKey(p)
	if err != nil {
		return err
	}
	if access != compose.Readable {
		fmt.Fprintf(stderr, "gencompose: %s made readable by uid %d (the central's user) through %s\n",
			filepath.Join(p, pki.CentralKeyFile), compose.CentralUID, access)
	}
	return nil
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

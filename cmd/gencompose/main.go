// Command gencompose writes the Docker Compose file for the central and N
// agencies: gencompose [-tls=false] [-keep] <output-file> <N> [<K>], K the
// central's nodes (1, the default: the single central "server"; 3 or 5: a
// Raft group "server1" … "serverK"). generar-compose.sh calls it.
//
// The mounts in the file are relative to the file's directory, so write it
// at the repository root. With TLS on (the default) it first makes sure the
// PKI the file mounts is there and usable: .pki/ next to the output file,
// with the CA, the central, nodes server1…serverK when K > 1, and agencies
// 1…N (pki.Issue, what bin/pki runs: it adds what is missing and never
// replaces a key), and the key the central mounts (central.key, or every
// node's) readable by the central's user in its image
// (compose.ShareCentralKey, compose.ShareNodeKey), which is not root. The output file is replaced atomically and only when
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

// maxPort is the highest TCP port.
const maxPort = 65535

// pkiDir is where the PKI goes, relative to the output file's directory:
// the file mounts ./.pki/… from there.
const pkiDir = ".pki"

const usage = `usage: generar-compose.sh <output-file> <N> [<K>]
       generar-compose.sh -tls=false <output-file> <N> [<K>]
       generar-compose.sh -keep <output-file> <N> [<K>]
       generar-compose.sh -admin-port=P <output-file> <N> [<K>]
  Writes a Docker Compose file with the central ("server") and N agencies
  ("client1" … "clientN"), N a whole number from 0 to %d.
  Write it at the repository root: its volumes are relative to it.
  The central's bets file and journal go on the named volume
  lottery_central_data: down and up keep them, down -v removes them.
  K, the central's nodes, is 1, 3 or 5: 1 (the default) is the single
  central above; 3 or 5 a replicated central (Raft), services "server1"
  … "serverK", each with its own volume (lottery_server1_data …),
  NODE_NAME, CLUSTER_NODES and its own key and certificate
  (central-server1.key …); every agency is given all of them in
  CLI_SERVER_ADDRESS and depends on all of them.
  With TLS (the default) it first issues what is missing of .pki/ next to
  the file (CA, central, its nodes, agencies 1…N), lets the central's user
  (uid %d) read the central's key (each node's), and mounts into each
  container only its own key and certificate plus ca.crt; the CA's key is
  mounted nowhere.
  -tls=false: TLS off on both sides (TLS=off, CLI_TLS=off), no keys
  mounted: only for the course's bare exercises.
  -keep: leave an existing output file as it is; .pki/ is still brought
  up to date for N agencies and K nodes (make docker-compose-up runs this).
  -admin-port=P: publish the central's admin listener (metrics, health,
  status page: docs/operations.md) on the host's 127.0.0.1:P, node I of
  a replicated central on P+I-1 (default 9090); Docker's healthcheck
  probes it from inside the container, with the image's own binary.
  examples: ./generar-compose.sh docker-compose-dev.yaml 5
            ./generar-compose.sh docker-compose-cluster.yaml 5 3
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

// parseArgs checks [-tls=false] [-keep] <output-file> <N> [<K>]: two or
// three arguments after the flags, N and K made of digits only (no sign, no
// spaces) and within range, K 1, 3 or 5.
func parseArgs(args []string) (request, error) {
	fs := flag.NewFlagSet("gencompose", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints the usage
	useTLS := fs.Bool("tls", true, "mutual TLS: issue and mount the PKI")
	keep := fs.Bool("keep", false, "leave an existing output file as it is")
	adminPort := fs.String("admin-port", strconv.Itoa(compose.DefaultAdminHostPort), "the host's loopback port of the central's admin listener")
	if err := fs.Parse(args); err != nil {
		return request{}, err
	}
	args = fs.Args()
	if len(args) != 2 && len(args) != 3 {
		return request{}, fmt.Errorf("want 2 or 3 arguments, got %d", len(args))
	}
	out := args[0]
	if out == "" {
		return request{}, fmt.Errorf("empty output file name")
	}
	n, err := wholeNumber("N", args[1])
	if err != nil {
		return request{}, err
	}
	if n > compose.MaxAgencies {
		return request{}, fmt.Errorf("N must be at most %d, got %q", compose.MaxAgencies, args[1])
	}
	k := 1
	if len(args) == 3 {
		if k, err = wholeNumber("K", args[2]); err != nil {
			return request{}, err
		}
		if k != 1 && k != 3 && k != 5 {
			return request{}, fmt.Errorf("K, the central's nodes, must be 1, 3 or 5, got %q", args[2])
		}
	}
	port, err := wholeNumber("-admin-port", *adminPort)
	if err != nil {
		return request{}, err
	}
	if port < 1 || port+k-1 > maxPort {
		return request{}, fmt.Errorf("-admin-port must leave room for %d ports below %d, got %q", k, maxPort+1, *adminPort)
	}
	return request{out: out, keep: *keep, opt: compose.Options{Agencies: n, Centrals: k, PlainText: !*useTLS, AdminHostPort: port}}, nil
}

// wholeNumber reads the argument called name: digits only, so that no
// sign, space or exponent is taken for a number.
func wholeNumber(name, s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("%s is empty", name)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s must be a whole number ≥ 0, got %q", name, s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s is too big: %q", name, s)
	}
	return n, nil
}

// generate sees to the PKI the file mounts, if any, then writes the file
// (unless it is to be kept). It says on stderr what it changed in the PKI.
func generate(req request, stderr io.Writer) error {
	var buf bytes.Buffer
	if err := compose.Write(&buf, req.opt); err != nil {
		return err
	}
	if !req.opt.PlainText {
		if err := preparePKI(filepath.Dir(req.out), req.opt.Agencies, req.opt.Centrals, stderr); err != nil {
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

// preparePKI adds to dir/.pki what is missing of the CA, the central, its k
// nodes (k > 1) and agencies 1…n, then lets the central's user read the key
// the file mounts: central.key, or every node's. The PKI goes beside the
// file only if the file can go there: a missing directory is an error, not
// something to create.
func preparePKI(dir string, n, k int, stderr io.Writer) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	p := filepath.Join(dir, pkiDir)
	written, err := pki.Issue(pki.Options{Dir: p, Agencies: n, Centrals: k})
	if len(written) > 0 {
		fmt.Fprintf(stderr, "gencompose: issued %d keys and certificates in %s\n", len(written), p)
	}
	if err != nil {
		return fmt.Errorf("the PKI in %s: %w", p, err)
	}
	logKey, err := pki.IssueLogKey(p, pki.DefaultLogOrigin)
	if len(logKey) > 0 {
		fmt.Fprintf(stderr, "gencompose: issued the audit log's key in %s\n", p)
	}
	if err != nil {
		return fmt.Errorf("the log key in %s: %w", p, err)
	}
	keys := []string{pki.CentralKeyFile, pki.LogKeyFile}
	if k > 1 {
		keys = []string{pki.LogKeyFile}
		for i := 1; i <= k; i++ {
			keys = append(keys, pki.NodeKeyFile(pki.NodeName(i)))
		}
	}
	for _, key := range keys {
		path := filepath.Join(p, key)
		access, err := compose.ShareKey(path, compose.CentralUID)
		if err != nil {
			return err
		}
		if access != compose.Readable {
			fmt.Fprintf(stderr, "gencompose: %s made readable by uid %d (the central's user) through %s\n",
				path, compose.CentralUID, access)
		}
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

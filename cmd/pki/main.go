// Command pki issues the lottery's CA, the central's and every agency's key
// and certificate and the log key offline, and revokes certificates:
//
//	pki -out DIR -agencies N [-centrals K] [-hosts server,localhost,127.0.0.1] [-log-origin NAME]
//	pki -out DIR -revoke NAME
//
// Issuing only ever adds what DIR lacks (pki.Issue, pki.IssueLogKey), so it is safe to run
// again, with more agencies, more nodes or more hosts. Revoking appends a certificate's
// serial to DIR/crl.txt, which the central reads.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"lottery/pki"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // something could not be issued or revoked
	exitUsage  = 2 // bad arguments: nothing was touched
)

const (
	defaultDir      = ".pki"
	defaultAgencies = 5
	defaultCentrals = 1
)

const usage = `usage: pki -out DIR -agencies N [-centrals K] [-hosts HOST,...] [-log-origin NAME]
       pki -out DIR -revoke NAME
  Issues whatever DIR lacks of the CA (ca.crt, ca.key), the central's
  certificate (central.crt, central.key), agency-1 … agency-N's, and the
  log key that signs checkpoints and the draw (log.key, and log.pub for
  agencies and auditors); with
  -centrals 3 or 5, also those of the nodes server1 … serverK of a
  replicated central (central-server1.crt, central-server1.key, …), each
  naming its node and covering its name, localhost and 127.0.0.1. Existing
  keys and certificates are never overwritten: run it again with a bigger N
  to add agencies, a bigger K to add nodes, or with a new host to reissue
  central.crt for the same key (the old one is kept as
  central.crt.old-<serial>).
  -revoke appends the serial of NAME's certificate to DIR/crl.txt. NAME is
  agency-2 (meaning DIR/agency-2.crt), central, central-server2, or the
  path of a .crt file.

  -out DIR      the PKI directory (default %s)
  -agencies N   issue agency-1 … agency-N (default %d)
  -centrals K   1 (default): a single central; 3 or 5: also issue the
                nodes server1 … serverK
  -hosts LIST   comma-separated DNS names and IP addresses the central is
                reached by (default %s; central.crt only)
  -log-origin NAME  the name of a new log key (default %s; no
                spaces or '+'); an existing key is never replaced
  -revoke NAME  revoke a certificate instead of issuing
  -h, --help    this text
`

// config is what the command line asks for.
type config struct {
	dir      string
	agencies int
	centrals int      // 1: a single central; 3 or 5: its nodes too
	hosts    []string // nil = pki.DefaultHosts
	origin   string   // of a new log key; "" = pki.DefaultLogOrigin
	revoke   string   // "" = issue
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "pki: %v\n", err)
		printUsage(stderr)
		return exitUsage
	}
	if cfg.revoke != "" {
		err = revoke(cfg, stdout)
	} else {
		err = issue(cfg, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pki: %v\n", strings.TrimPrefix(err.Error(), "pki: "))
		return exitFailed
	}
	return exitOK
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, usage, defaultDir, defaultAgencies, strings.Join(pki.DefaultHosts, ","), pki.DefaultLogOrigin)
}

// parseArgs reads the flags; the flag package prints nothing itself, so
// that run decides where usage goes.
func parseArgs(args []string) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("pki", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&cfg.dir, "out", defaultDir, "")
	fs.IntVar(&cfg.agencies, "agencies", defaultAgencies, "")
	fs.IntVar(&cfg.centrals, "centrals", defaultCentrals, "")
	hosts := fs.String("hosts", "", "")
	fs.StringVar(&cfg.revoke, "revoke", "", "")
	fs.StringVar(&cfg.origin, "log-origin", "", "")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.dir == "" {
		return config{}, errors.New("-out is empty")
	}
	if set["revoke"] {
		if cfg.revoke == "" {
			return config{}, errors.New("-revoke needs a NAME")
		}
		if set["agencies"] || set["centrals"] || set["hosts"] || set["log-origin"] {
			return config{}, errors.New("-revoke takes no -agencies, -centrals, -hosts or -log-origin")
		}
		return cfg, nil
	}
	if set["log-origin"] && cfg.origin == "" {
		return config{}, errors.New("-log-origin is empty")
	}
	if cfg.agencies < 0 {
		return config{}, fmt.Errorf("-agencies must be 0 or more, got %d", cfg.agencies)
	}
	if cfg.centrals != 1 && cfg.centrals != 3 && cfg.centrals != 5 {
		return config{}, fmt.Errorf("-centrals must be 1, 3 or 5, got %d", cfg.centrals)
	}
	if set["hosts"] {
		for h := range strings.SplitSeq(*hosts, ",") {
			h = strings.TrimSpace(h)
			if h == "" {
				return config{}, fmt.Errorf("-hosts %q has an empty name", *hosts)
			}
			cfg.hosts = append(cfg.hosts, h)
		}
	}
	return cfg, nil
}

// issue runs pki.Issue and says what it wrote, also when it failed midway.
func issue(cfg config, stdout io.Writer) error {
	centralPath := filepath.Join(cfg.dir, pki.CentralCertFile)
	oldCentral, _ := pki.ReadCertificate(centralPath) // nil when there is none yet
	written, err := pki.Issue(pki.Options{Dir: cfg.dir, Agencies: cfg.agencies, Centrals: cfg.centrals, Hosts: cfg.hosts})
	if err == nil {
		var logKey []string
		logKey, err = pki.IssueLogKey(cfg.dir, cfg.origin)
		written = append(written, logKey...)
	}
	for _, path := range written {
		if path == centralPath && oldCentral != nil {
			fmt.Fprintf(stdout, "kept the previous %s as %s.old-%s\n",
				centralPath, centralPath, pki.FormatSerial(oldCentral.SerialNumber))
		}
		fmt.Fprintf(stdout, "wrote %s\n", path)
	}
	if err != nil {
		return err
	}
	if len(written) == 0 {
		fmt.Fprintf(stdout, "nothing to do: %s is complete\n", cfg.dir)
	} else {
		fmt.Fprintf(stdout, "wrote %d files: %s holds the CA, the central%s, the log key and %s\n",
			len(written), cfg.dir, nodeRange(cfg.centrals), agencyRange(cfg.agencies))
	}
	return nil
}

// nodeRange names the nodes of a replicated central, "" for a single one.
func nodeRange(k int) string {
	if k < 2 {
		return ""
	}
	return fmt.Sprintf(", its nodes %s…%s", pki.NodeName(1), pki.NodeName(k))
}

func agencyRange(n int) string {
	switch n {
	case 0:
		return "no agency"
	case 1:
		return "agency 1"
	}
	return fmt.Sprintf("agencies 1…%d", n)
}

// revoke appends the serial of the certificate cfg.revoke names to
// DIR/crl.txt, after checking that DIR's CA signed it: revoking a
// certificate of another PKI would be a mistake that protects nothing.
func revoke(cfg config, stdout io.Writer) error {
	certPath := certPathFor(cfg.dir, cfg.revoke)
	cert, err := pki.ReadCertificate(certPath)
	if err != nil {
		return err
	}
	ca, err := pki.ReadCertificate(filepath.Join(cfg.dir, pki.CAFile))
	if err != nil {
		return err
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("%s was not signed by %s: %w", certPath, filepath.Join(cfg.dir, pki.CAFile), err)
	}
	listPath := filepath.Join(cfg.dir, pki.RevocationFile)
	list, err := pki.ReadRevocationList(listPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	serial := pki.FormatSerial(cert.SerialNumber)
	if list.Revoked(cert.SerialNumber) {
		fmt.Fprintf(stdout, "%s (%q, serial %s) was already revoked in %s\n", certPath, cert.Subject.CommonName, serial, listPath)
		return nil
	}
	if err := pki.Revoke(listPath, cert); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %s (%q, serial %s) in %s\n", certPath, cert.Subject.CommonName, serial, listPath)
	return nil
}

// certPathFor maps NAME to a certificate file: a path (it has a directory or
// ends in .crt) as given, otherwise DIR/NAME.crt, so agency-2 means
// DIR/agency-2.crt.
func certPathFor(dir, name string) string {
	if strings.HasSuffix(name, ".crt") || strings.ContainsRune(name, '/') || strings.ContainsRune(name, filepath.Separator) {
		return name
	}
	return filepath.Join(dir, name+".crt")
}

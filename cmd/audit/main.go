// Command audit re-verifies a draw offline, trusting none of the files it
// is given: the central's bets.csv and its journal (read through a
// LeafSource: their formats are storage's), the log's public key
// (.pki/log.pub) and any agencies' receipts files, which hold the signed
// checkpoints each agency accepted and the signed draw statement:
//
//	audit [-pub .pki/log.pub] [-bets bets.csv] [-statement FILE] [RECEIPTS ...]
//
// It prints one line per check (package audit's Report) and exits 0 when
// every check passed, 1 when one failed, 2 when it could not even start
// (bad arguments, a file it cannot read). docs/audit.md says what each
// check means.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"lottery/audit"
	"lottery/pki"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a check failed: the draw is not what the files and the signatures say
	exitUsage  = 2 // bad arguments or an unreadable file: nothing was checked
)

const (
	defaultPub  = ".pki/" + pki.LogPubFile
	defaultBets = "bets.csv"
	// maxStatementFile bounds -statement: a signed statement is at most
	// audit.MaxStatementSize.
	maxStatementFile = audit.MaxStatementSize
)

const usage = `usage: audit [-pub FILE] [-bets FILE] [-statement FILE] [RECEIPTS ...]
  Re-verifies a draw offline: the log the central's journal and bets.csv
  recompute, the signed draw statement against it (winners included), and
  every receipts file given (.data/agency-N.receipts) against both. Prints
  one line per check, "ok: …" or "FAIL: …", then a summary.

  -pub FILE        the log's public key (default %s)
  -bets FILE       the central's bets file; its journal is beside it (default %s)
  -statement FILE  the signed draw statement (default: the one the first
                   receipts file holds; none: the log and receipts only)
  -h, --help       this text

  Exit status: 0 every check passed, 1 a check failed, 2 nothing checked.
`

// LeafSource is how the command reads the central's files: the journal's
// records as leaves, each with the full SHA-256 of the bets.csv bytes it
// covers and where it is, and the rows of bets.csv in stored order. The
// formats are storage's, so storage implements it (openSource).
type LeafSource interface {
	Leaves() ([]audit.LocatedLeaf, error)
	Rows(yield func(agency uint32, document string, number int) bool) error
	Close() error
}

// opener opens the LeafSource of a bets file.
type opener func(betsPath string) (LeafSource, error)

// config is what the command line asks for.
type config struct {
	pub       string
	bets      string
	statement string
	receipts  []string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, openSource))
}

func run(args []string, stdout, stderr io.Writer, open opener) int {
	cfg, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, usage, defaultPub, defaultBets)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "audit: %v\n", err)
		fmt.Fprintf(stderr, usage, defaultPub, defaultBets)
		return exitUsage
	}
	in, closeAll, err := gather(cfg, open)
	defer closeAll()
	if err != nil {
		fmt.Fprintf(stderr, "audit: %v\n", err)
		return exitUsage
	}
	rep := audit.Audit(in)
	if _, err := rep.WriteTo(stdout); err != nil {
		fmt.Fprintf(stderr, "audit: %v\n", err)
		return exitUsage
	}
	if failures := rep.Failures(); len(failures) > 0 {
		fmt.Fprintf(stdout, "audit: FAILED: %d of %d checks failed\n", len(failures), len(rep.Findings))
		return exitFailed
	}
	summary := fmt.Sprintf("a log of %d leaves, root %s, %d bets", rep.Size, rep.Root, rep.Bets)
	if rep.Drawn {
		summary += fmt.Sprintf(", number %04d", rep.Number)
	} else {
		summary += ", no draw"
	}
	fmt.Fprintf(stdout, "audit: OK: %s, %d receipts files\n", summary, len(cfg.receipts))
	return exitOK
}

// parseArgs reads the flags; the flag package prints nothing itself, so
// run decides where usage goes.
func parseArgs(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&cfg.pub, "pub", defaultPub, "")
	fs.StringVar(&cfg.bets, "bets", defaultBets, "")
	fs.StringVar(&cfg.statement, "statement", "", "")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if cfg.pub == "" || cfg.bets == "" {
		return config{}, errors.New("-pub and -bets need a file")
	}
	cfg.receipts = fs.Args()
	return cfg, nil
}

// gather reads everything Audit needs; the returned func closes what it
// opened, also on error.
func gather(cfg config, open opener) (audit.AuditInput, func(), error) {
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	var in audit.AuditInput
	var err error
	if in.Key, err = pki.ReadLogVerifier(cfg.pub); err != nil {
		return in, closeAll, err
	}
	src, err := open(cfg.bets)
	if err != nil {
		return in, closeAll, err
	}
	closers = append(closers, src.Close)
	if in.Leaves, err = src.Leaves(); err != nil {
		return in, closeAll, err
	}
	in.Rows = src.Rows
	if cfg.statement != "" {
		if in.Statement, err = readSmall(cfg.statement, maxStatementFile); err != nil {
			return in, closeAll, err
		}
	}
	for _, path := range cfg.receipts {
		f, err := os.Open(path)
		if err != nil {
			return in, closeAll, err
		}
		closers = append(closers, f.Close)
		in.Receipts = append(in.Receipts, audit.ReceiptsInput{Name: path, R: f})
	}
	return in, closeAll, nil
}

// readSmall reads a file of at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is more than %d bytes: not a signed statement", path, limit)
	}
	return b, nil
}

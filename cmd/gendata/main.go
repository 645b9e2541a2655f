// Command gendata writes deterministic agency files agency-1.csv …
// agency-N.csv for demos, tests and benchmarks. It never overwrites an
// existing file unless told to.
//
//	gendata -out .data -agencies 5 -bets 1000 -winners 2
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"lottery/gendata"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a file could not be written
	exitUsage  = 2 // bad arguments: nothing was written
)

const usage = `usage: gendata [-out DIR] [-agencies N] [-bets N] [-winners N] [-seed N] [-force]
  Writes DIR/agency-1.csv … DIR/agency-N.csv: rows
  first_name,last_name,document,birthdate,number, the same for the same
  seed, with exactly -winners bets on the winning number in each file.
  An existing file is kept unless -force.

`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("gendata", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	out := flags.String("out", ".data", "directory to write agency-N.csv files into")
	agencies := flags.Int("agencies", 5, "number of agency files")
	bets := flags.Int("bets", 1000, "bets per agency")
	winners := flags.Int("winners", 2, "winning bets per agency")
	seed := flags.Uint64("seed", 7574, "random seed: the same seed gives the same files")
	force := flags.Bool("force", false, "overwrite existing files")
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		flags.SetOutput(w)
		flags.PrintDefaults()
	}
	err := flags.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return exitOK
	case err == nil && (*agencies < 0 || *bets < 0 || *winners < 0):
		err = errors.New("-agencies, -bets and -winners must not be negative")
	case err == nil && flags.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	if err != nil {
		fmt.Fprintf(stderr, "gendata: %v\n", err)
		printUsage(stderr)
		return exitUsage
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "gendata:", err)
		return exitFailed
	}
	for a := 1; a <= *agencies; a++ {
		path, err := gendata.WriteFile(*out, a, *bets, *winners, *seed, *force)
		switch {
		case errors.Is(err, fs.ErrExist):
			fmt.Fprintf(stdout, "%s exists: kept\n", path)
		case err != nil:
			fmt.Fprintln(stderr, "gendata:", err)
			return exitFailed
		default:
			fmt.Fprintf(stdout, "%s: %d bets, %d winners\n", path, *bets, min(*winners, *bets))
		}
	}
	return exitOK
}

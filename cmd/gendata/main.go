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
	"io/fs"
	"os"

	"lottery/gendata"
)

func main() {
	out := flag.String("out", ".data", "directory to write agency-N.csv files into")
	agencies := flag.Int("agencies", 5, "number of agency files")
	bets := flag.Int("bets", 1000, "bets per agency")
	winners := flag.Int("winners", 2, "winning bets per agency")
	seed := flag.Uint64("seed", 7574, "random seed: the same seed gives the same files")
	force := flag.Bool("force", false, "overwrite existing files")
	flag.Parse()
	if *agencies < 0 || *bets < 0 || *winners < 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gendata [-out dir] [-agencies N] [-bets N] [-winners N] [-seed N] [-force]")
		os.Exit(2)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
	for a := 1; a <= *agencies; a++ {
		path, err := gendata.WriteFile(*out, a, *bets, *winners, *seed, *force)
		switch {
		case errors.Is(err, fs.ErrExist):
			fmt.Printf("%s exists: kept\n", path)
		case err != nil:
			fmt.Fprintln(os.Stderr, "gendata:", err)
			os.Exit(1)
		default:
			fmt.Printf("%s: %d bets, %d winners\n", path, *bets, min(*winners, *bets))
		}
	}
}

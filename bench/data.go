package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"lottery"
	"lottery/gendata"
	"lottery/storage"
)

// agencyFile is one generated agency file and the winners it must get.
type agencyFile struct {
	path    string
	winners []string // documents of its winning bets, sorted
}

// writeAgencyFiles generates the files of agencies 1..agencies, n bets
// each, winners of them winning, in parallel.
func writeAgencyFiles(dir string, agencies, n, winners int, seed uint64) ([]agencyFile, error) {
	files := make([]agencyFile, agencies)
	err := parallel(agencies, func(i int) error {
		id := i + 1
		bets := gendata.Bets(id, n, winners, seed)
		path := filepath.Join(dir, fmt.Sprintf("agency-%d.csv", id))
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := gendata.Write(f, bets); err != nil {
			f.Close()
			return err
		}
		files[i] = agencyFile{path: path, winners: winningDocuments(bets)}
		return f.Close()
	})
	return files, err
}

func winningDocuments(bets []lottery.Bet) []string {
	var docs []string
	for _, b := range bets {
		if lottery.Wins(b.Number) {
			docs = append(docs, b.Document)
		}
	}
	slices.Sort(docs)
	return docs
}

// Preloading fills a store before the central opens it, as if earlier
// agencies had uploaded: rows of preloadAgencySize bets per agency, stored
// in batches of preloadBatch.
const (
	preloadAgencySize = 100_000
	preloadBatch      = 1000
	preloadWinners    = 3
)

// preload appends rows generated bets to the store at betsPath under
// agencies numbered from firstAgency up (NoSync: this is set-up, not the
// measured part) and returns how many of them win.
func preload(betsPath string, rows int64, firstAgency int, seed uint64) (winners int64, err error) {
	store, _, err := storage.Open(betsPath, storage.Options{NoSync: true})
	if err != nil {
		return 0, err
	}
	chunks := int((rows + preloadAgencySize - 1) / preloadAgencySize)
	var mu sync.Mutex
	err = parallel(chunks, func(i int) error {
		n := int(min(preloadAgencySize, rows-int64(i)*preloadAgencySize))
		id := firstAgency + i
		bets := gendata.Bets(id, n, preloadWinners, seed)
		var commits []*lottery.Commit
		for seq, start := uint64(1), 0; start < n; seq, start = seq+1, start+preloadBatch {
			batch := bets[start:min(start+preloadBatch, n)]
			var rows lottery.Rows
			rows.Grow(len(batch) * 64)
			for _, b := range batch {
				b.Agency = id
				rows.AddBet(b)
			}
			commits = append(commits, store.Append(uint32(id), seq, &rows))
		}
		for _, c := range commits {
			if err := c.Wait(); err != nil {
				return fmt.Errorf("preload agency %d: %w", id, err)
			}
		}
		mu.Lock()
		winners += int64(len(winningDocuments(bets)))
		mu.Unlock()
		return nil
	})
	return winners, errors.Join(err, store.Close())
}

// parallel runs fn(0..n-1) on as many goroutines as there are CPUs and
// returns the first error.
func parallel(n int, fn func(i int) error) error {
	work := make(chan int)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if errs[w] == nil {
					errs[w] = fn(i)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

package central_test

import (
	"fmt"
	"testing"

	"lottery/bench"
	"lottery/central"
)

// BenchmarkFindWinners times the draw (load_bets + has_won over the whole
// bets file) over stores of growing size. B/op should not grow with the
// rows: the draw streams the file. cmd/bench -draw-only -bets 10000000
// measures the 10-million-bet target.
func BenchmarkFindWinners(b *testing.B) {
	for _, rows := range []int64{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			d, err := bench.PrepareDraw(bench.DrawScenario{Bets: rows, Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.SetBytes(d.Store().Stats().Size)
			b.ReportAllocs()
			for b.Loop() {
				winners, err := central.FindWinners(d.Store())
				if err != nil {
					b.Fatal(err)
				}
				total := 0
				for _, w := range winners {
					total += len(w)
				}
				if int64(total) != d.Winners() {
					b.Fatalf("draw found %d winners, want %d", total, d.Winners())
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

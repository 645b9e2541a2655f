package agency

import (
	"fmt"
	"testing"

	"lottery/gendata"
	"lottery/logline"
	"lottery/protocol"
)

// benchFileBets is the size of the agency file read by the benchmarks.
const benchFileBets = 100_000

// BenchmarkFileSource_Fill measures the agency's hot path before the
// network: reading its CSV file, validating every bet and packing them
// into batch frames. One op is the whole 100,000-bet file; OpenAndFill also
// counts the first pass that counts the rows for progress lines.
func BenchmarkFileSource_Fill(b *testing.B) {
	path, err := gendata.WriteFile(b.TempDir(), 1, benchFileBets, 3, 1, false)
	if err != nil {
		b.Fatal(err)
	}
	for _, maxAmount := range []int{100, protocol.MaxBetsPerBatch} {
		for _, withOpen := range []bool{false, true} {
			name := fmt.Sprintf("Fill/maxamount=%d", maxAmount)
			if withOpen {
				name = fmt.Sprintf("OpenAndFill/maxamount=%d", maxAmount)
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				var bb protocol.BatchBuilder
				batches := 0
				for b.Loop() {
					if !withOpen {
						b.StopTimer()
					}
					src, err := openFile(path, logline.Discard())
					if err != nil {
						b.Fatal(err)
					}
					if !withOpen {
						b.StartTimer()
					}
					sent := 0
					for seq, eof := uint64(1), false; !eof; seq++ {
						bb.Reset(1, seq, maxAmount)
						if eof, err = src.Fill(&bb); err != nil {
							b.Fatal(err)
						}
						if bb.Len() > 0 {
							_ = bb.Frame()
							sent += bb.Len()
							batches++
						}
					}
					src.Close()
					if sent != benchFileBets || src.Invalid() != 0 {
						b.Fatalf("packed %d bets (%d invalid), want %d", sent, src.Invalid(), benchFileBets)
					}
				}
				b.ReportMetric(float64(benchFileBets)*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
				b.ReportMetric(float64(batches)/float64(b.N), "batches/op")
			})
		}
	}
}

// BenchmarkRowsDigest measures what the audit log adds to packing a batch:
// the SHA-256 of the rows the central will store for it (one op is a batch
// of 100 bets), which the agency checks its receipt against.
func BenchmarkRowsDigest(b *testing.B) {
	path, err := gendata.WriteFile(b.TempDir(), 1, 100, 3, 1, false)
	if err != nil {
		b.Fatal(err)
	}
	src, err := openFile(path, logline.Discard())
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var bb protocol.BatchBuilder
	bb.Reset(1, 1, 100)
	if _, err := src.Fill(&bb); err != nil {
		b.Fatal(err)
	}
	frame := bb.Frame()
	var d rowsDigester
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		d.digest(frame)
	}
}

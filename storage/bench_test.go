package storage_test

import (
	"fmt"
	"lottery"
	"sync"
	"sync/atomic"
	"testing"

	"lottery/csvrow"
	"lottery/gendata"
	"lottery/storage"
)

// Shape of the appended batches: what an agency sends by default (100 bets
// per batch) with the central's pipelining (several batches of a
// connection in flight while earlier ones are synced).
const (
	benchBetsPerBatch = 100
	benchInFlight     = 16
)

// BenchmarkStore_Append measures group commit: one op is one batch of 100
// bets appended and acknowledged (durable unless nosync). Each appender is
// an agency that keeps benchInFlight batches in flight, as a central session
// does; the more appenders, the more batches share one fsync.
func BenchmarkStore_Append(b *testing.B) {
	var rows []byte
	for _, bet := range gendata.Bets(1, benchBetsPerBatch, 0, 1) {
		rows = csvrow.AppendBetRow(rows, 1, bet.FirstName, bet.LastName, bet.Document, bet.Birthdate, bet.Number)
	}
	// The store only reads rows: every batch may share them.
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"durable", false}, {"nosync", true}} {
		for _, appenders := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/appenders=%d", mode.name, appenders), func(b *testing.B) {
				benchAppend(b, rows, appenders, mode.noSync)
			})
		}
	}
}

func benchAppend(b *testing.B, rows []byte, appenders int, noSync bool) {
	store, _, err := storage.Open(b.TempDir()+"/bets.csv", storage.Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	fsyncs0 := store.Stats().Fsyncs
	b.SetBytes(int64(len(rows)))
	b.ReportAllocs()
	b.ResetTimer()
	var claimed atomic.Int64 // ops taken by the appenders, up to b.N
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inFlight []*lottery.Commit
			wait := func() {
				if err := inFlight[0].Wait(); err != nil {
					b.Error(err)
				}
				inFlight = inFlight[1:]
			}
			for seq := uint64(1); claimed.Add(1) <= int64(b.N); seq++ {
				if len(inFlight) == benchInFlight {
					wait()
				}
				inFlight = append(inFlight, store.Append(uint32(a+1), seq, lottery.EncodedRows(rows, benchBetsPerBatch)))
			}
			for len(inFlight) > 0 {
				wait()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)*benchBetsPerBatch/b.Elapsed().Seconds(), "bets/s")
	b.ReportMetric(float64(store.Stats().Fsyncs-fsyncs0)/float64(b.N), "fsyncs/op")
}

package agency_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"lottery/agency"
	"lottery/gendata"
)

// recorder is a Progress that keeps what it was told.
type recorder struct {
	mu              sync.Mutex
	totals          []int64
	sent, acked     int
	finished        int
	sentAfterFinish bool
	ackedBeyondSent bool
}

func (r *recorder) SetTotal(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.totals = append(r.totals, n)
}

func (r *recorder) Sent(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent += n
	r.sentAfterFinish = r.sentAfterFinish || r.finished > 0
}

func (r *recorder) Acked(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acked += n
	r.ackedBeyondSent = r.ackedBeyondSent || r.acked > r.sent
}

func (r *recorder) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished++
}

// TestAgency_Progress: the agency tells its Progress the file's size, each
// batch sent once (a batch resent after a lost connection is not sent
// again for it), each batch answered, and the end.
func TestAgency_Progress(t *testing.T) {
	const bets = 600
	tests := []struct {
		name      string
		configure func(*fakeCentral)
	}{
		{"OK", nil},
		{"OK/Reconnected", func(f *fakeCentral) { f.dropAt = 6 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.configure)
			rec := &recorder{}
			res, err, _ := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr,
				DataFile: writeBets(t, gendata.Bets(1, bets, 2, seed)), MaxAmount: 10, BackoffInitial: 10 * time.Millisecond,
				Progress: rec})
			if err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.totals) != 1 || rec.totals[0] != bets {
				t.Errorf("totals %v, want [%d]", rec.totals, bets)
			}
			if rec.sent != bets || rec.acked != bets || rec.acked != res.Sent+res.Rejected {
				t.Errorf("sent %d, acked %d; want %d each (result %+v)", rec.sent, rec.acked, bets, res)
			}
			if rec.finished != 1 || rec.sentAfterFinish || rec.ackedBeyondSent {
				t.Errorf("finished %d times, sent after finish %v, acked beyond sent %v", rec.finished, rec.sentAfterFinish, rec.ackedBeyondSent)
			}
		})
	}
}

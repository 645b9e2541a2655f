package storage_test

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"lottery/storage"
)

// TestOptions_OnSync: every group commit that syncs tells OnSync once (a
// batch's group syncs both files at once, a finish's the journal alone);
// NoSync makes no fsync and tells nothing.
func TestOptions_OnSync(t *testing.T) {
	const batches = 5
	tests := []struct {
		name   string
		noSync bool
		want   int64 // one per batch, one for the finish
	}{
		{"OK/Durable", false, batches + 1},
		{"OK/NoSync", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			var negative atomic.Bool
			opt := storage.Options{NoSync: tt.noSync, OnSync: func(d time.Duration) {
				calls.Add(1)
				negative.Store(negative.Load() || d < 0)
			}}
			s, _, err := storage.Open(filepath.Join(t.TempDir(), "bets.csv"), opt)
			if err != nil {
				t.Fatal(err)
			}
			<-s.Ready()
			appendOK(t, s, 1, 1, batches) // each waited for: a group of its own
			if err := s.MarkFinished(1, batches).Wait(); err != nil {
				t.Fatal(err)
			}
			closeStore(t, s)
			if got := calls.Load(); got != tt.want {
				t.Errorf("OnSync called %d times, want %d", got, tt.want)
			}
			if negative.Load() {
				t.Error("OnSync got a negative duration")
			}
		})
	}
}

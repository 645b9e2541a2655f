package central

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	b := newBudget(10)
	quit := make(chan struct{})
	if !b.acquire(6, quit) || !b.acquire(4, quit) {
		t.Fatal("the budget refused what it has")
	}
	got := make(chan int, 3)
	var wg sync.WaitGroup
	for i, n := range []int64{5, 3, 100} { // 100 is clamped to the whole budget
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.acquire(n, quit) {
				got <- i
				b.release(n)
			}
		}()
		waitWaiters(t, b, i+1) // queue them in this order
	}
	b.release(6) // 5 fits, then gives its 5 back: 3 fits, 10 waits for all
	if first := <-got; first != 0 {
		t.Fatalf("served %d first, want 0 (first come, first served)", first)
	}
	b.release(4)
	wg.Wait()
	if c, d := <-got, <-got; c != 1 || d != 2 {
		t.Fatalf("then served %d, %d; want 1, 2", c, d)
	}
	if b.free != 10 {
		t.Fatalf("free %d after every release, want 10", b.free)
	}
}

func TestBudget_Quit(t *testing.T) {
	b := newBudget(10)
	quit := make(chan struct{})
	b.acquire(10, quit)
	done := make(chan bool)
	go func() { done <- b.acquire(1, quit) }()
	waitWaiters(t, b, 1)
	close(quit)
	if <-done {
		t.Fatal("acquire succeeded after quit with nothing free")
	}
	b.release(10)
	if b.free != 10 || len(b.waiters) != 0 {
		t.Fatalf("free %d, %d waiting; want 10, 0", b.free, len(b.waiters))
	}
}

func waitWaiters(t *testing.T, b *budget, n int) {
	t.Helper()
	for range 10000 {
		b.mu.Lock()
		k := len(b.waiters)
		b.mu.Unlock()
		if k >= n {
			return
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d waiters never queued", n)
}

// TestGrant: every ack grants each uploading agency its share of the
// in-flight budget, in whole frames, between 1 and the window.
func TestGrant(t *testing.T) {
	tests := []struct {
		budget    int64
		uploading int32
		window    int
		want      uint16
	}{
		{budget: 8 << 20, uploading: 1, window: 64, want: 64},  // a lone agency: its whole window
		{budget: 8 << 20, uploading: 0, window: 64, want: 64},  // nobody counted yet
		{budget: 8 << 20, uploading: 64, window: 64, want: 16}, // 1024 frames shared by 64
		{budget: 2 << 20, uploading: 64, window: 64, want: 4},
		{budget: 2 << 20, uploading: 1000, window: 64, want: 1}, // never below one batch
		{budget: 1 << 30, uploading: 1, window: 1 << 20, want: 65535},
	}
	for _, tt := range tests {
		c := &Central{cfg: Config{MaxInFlightBytes: tt.budget, Window: tt.window}}
		c.uploading.Store(tt.uploading)
		if got := c.grant(); got != tt.want {
			t.Errorf("budget %d, %d uploading, window %d: grant %d, want %d", tt.budget, tt.uploading, tt.window, got, tt.want)
		}
	}
}

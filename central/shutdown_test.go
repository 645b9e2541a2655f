package central_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"lottery"
	"lottery/central"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/storage"
)

// hungDisk is a file system whose fsyncs block, once armed, until released:
// a disk that stopped answering.
type hungDisk struct {
	storage.OS // SyncDir, Rename, Remove
	armed      atomic.Bool
	release    chan struct{}
}

func (d *hungDisk) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	f, err := storage.OS{}.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &hungFile{File: f, d: d}, nil
}

type hungFile struct {
	storage.File
	d *hungDisk
}

func (f *hungFile) Sync() error {
	if f.d.armed.Load() {
		<-f.d.release
	}
	return f.File.Sync()
}

// TestShutdown_HungDisk: a batch waiting for an fsync that never returns
// cannot hold the stop: Shutdown returns when its context ends, with the
// context's error, and every session goroutine is gone.
func TestShutdown_HungDisk(t *testing.T) {
	disk := &hungDisk{release: make(chan struct{})}
	store, _, err := storage.Open(filepath.Join(t.TempDir(), "bets.csv"), storage.Options{FS: disk})
	if err != nil {
		t.Fatal(err)
	}
	logs := testutil.NewBuffer()
	c, err := central.New(central.Config{Agencies: 1}, store, logline.New(logs, slog.LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ln) }()

	disk.armed.Store(true)
	a := dialRaw(t, ln.Addr().String())
	a.hello(1)
	a.sendBatch(1, 1, []lottery.Bet{{FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "1990-01-01", Number: 1}})
	waitFor(t, "the batch to reach the disk", func() bool { return store.Stats().Fsyncs > 2 })

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace at all: the stop must not wait for the disk
	if err := c.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	if err := <-served; !errors.Is(err, central.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	a.expectClosed()
	close(disk.release) // the disk comes back: the store can close
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
}

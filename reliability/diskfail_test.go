package reliability

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"lottery/agency"
	"lottery/central"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/storage"
)

// sickDisk is a storage.FS over the real one whose next fullFor writes fail
// (a full disk, freed after a while) and whose fsyncs fail from the
// failSyncAt-th on (a dying disk).
type sickDisk struct {
	storage.OS // SyncDir, Rename, Remove
	fullFor    atomic.Int64
	failSyncAt atomic.Int64 // 0: never
	syncs      atomic.Int64
}

var errSick = errors.New("injected: no space left on device")

func (d *sickDisk) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &sickFile{File: f, d: d}, nil
}

type sickFile struct {
	*os.File
	d *sickDisk
}

func (f *sickFile) Write(p []byte) (int, error) {
	if f.d.fullFor.Add(-1) >= 0 {
		n, _ := f.File.Write(p[:len(p)/3]) // a short write, then the error
		return n, errSick
	}
	return f.File.Write(p)
}

func (f *sickFile) WriteAt(p []byte, off int64) (int, error) {
	if f.d.fullFor.Add(-1) >= 0 {
		n, _ := f.File.WriteAt(p[:len(p)/3], off)
		return n, errSick
	}
	return f.File.WriteAt(p, off)
}

func (f *sickFile) Sync() error {
	if n, at := f.d.syncs.Add(1), f.d.failSyncAt.Load(); at > 0 && n >= at {
		return errors.New("injected: fsync: input/output error")
	}
	return f.File.Sync()
}

// runCentral serves a central on ln over store until it is shut down.
func runCentral(t *testing.T, store *storage.Store, ln net.Listener, agencies int, log *slog.Logger) (shutdown func()) {
	t.Helper()
	c, err := central.New(central.Config{Agencies: agencies}, store, log)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Shutdown(ctx)
		<-served
	}
}

// TestCentral_SickDisk runs the central and two agencies in process over a
// disk that fails. A full disk (failing, even short, writes) refuses batches
// with a storage error while the central keeps serving, and the agencies
// resend until the space is back. A failed fsync stops the store; the
// central is restarted over the repaired files, as cmd/server's exit and a
// restart would do, and the agencies finish. Either way the bets file holds
// every valid bet exactly once and the winners are right.
func TestCentral_SickDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads thousands of bets")
	}
	const agencies, perAgency = 2, 3000
	dataDir := t.TempDir()
	var want, sent []int // winners and valid bets per agency
	d := dataset{dir: dataDir, agencies: agencies}
	for a := 1; a <= agencies; a++ {
		if _, err := gendata.WriteFile(dataDir, a, perAgency, a+1, 99, true); err != nil {
			t.Fatal(err)
		}
		valid := validRows(t, d.file(a), a)
		d.rows = append(d.rows, valid...)
		w := 0
		for _, b := range valid {
			if b.HasWon() {
				w++
			}
		}
		want, sent = append(want, w), append(sent, len(valid))
	}
	sortBets(d.rows)

	tests := []struct {
		name string
		// sicken makes the disk fail before the upload starts.
		sicken func(disk *sickDisk)
		stops  bool
	}{
		{"disk full for a while", func(disk *sickDisk) { disk.fullFor.Store(25) }, false},
		{"fsync fails", func(disk *sickDisk) { disk.failSyncAt.Store(disk.syncs.Load() + 1) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			disk := &sickDisk{}
			store, _, err := storage.Open(path, storage.Options{FS: disk})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			logs := testutil.NewBuffer()
			log := logline.New(logs, slog.LevelInfo)
			shutdown := runCentral(t, store, ln, agencies, log)

			tt.sicken(disk)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			type outcome struct {
				res agency.Result
				err error
			}
			results := make([]chan outcome, agencies)
			for a := 1; a <= agencies; a++ {
				results[a-1] = make(chan outcome, 1)
				ag, err := agency.New(agency.Config{ID: a, ServerAddress: addr, DataFile: d.file(a), MaxAmount: 20, Window: 4,
					BackoffInitial: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, logline.Discard())
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					res, err := ag.Run(ctx)
					results[a-1] <- outcome{res, err}
				}()
			}
			if tt.stops {
				select {
				case <-store.Failed():
				case <-time.After(time.Minute):
					t.Fatal("the store did not stop after a failed fsync")
				}
				// What cmd/server does: stop the central, close the store,
				// exit; then a new process recovers the files.
				shutdown()
				stopped := store.Err()
				store.Close()
				var rec storage.Recovery
				store, rec, err = storage.Open(path, storage.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("store stopped: %v; recovery at restart: %+v", stopped, rec)
				ln, err = net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				shutdown = runCentral(t, store, ln, agencies, log)
			}
			for a := 1; a <= agencies; a++ {
				o := <-results[a-1]
				if o.err != nil {
					t.Fatalf("agency %d: %v", a, o.err)
				}
				if len(o.res.Winners) != want[a-1] || o.res.Sent != sent[a-1] {
					t.Errorf("agency %d: %d winners, %d bets acked; want %d and %d", a, len(o.res.Winners), o.res.Sent, want[a-1], sent[a-1])
				}
			}
			shutdown()
			select {
			case <-store.Failed():
				if !tt.stops {
					t.Errorf("the store stopped: %v", store.Err())
				}
			default:
			}
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}
			checkStored(t, path, d.rows)
			refused := 0
			for _, l := range testutil.Lines(logs.String()) {
				if l.Action == "apuesta_recibida" && l.Result == "fail" && l.Get("code") == "storage" {
					refused++
				}
			}
			if refused == 0 {
				t.Errorf("no batch was refused with a storage error: the disk never failed under load")
			}
			t.Logf("%d batches refused with a storage error; %d bets stored once each", refused, len(d.rows))
		})
	}
}

package admin_test

import (
	"errors"
	"strings"
	"testing"

	"lottery/admin"
)

// fakeLedger is a ledger whose state the test sets.
type fakeLedger struct {
	ready chan struct{}
	err   error
}

func (f *fakeLedger) Ready() <-chan struct{} { return f.ready }
func (f *fakeLedger) Err() error             { return f.err }

func TestLedgerChecks(t *testing.T) {
	open := make(chan struct{})
	close(open)
	tests := []struct {
		name            string
		ledger          *fakeLedger
		recovery, store string // "" passes, else in the error
	}{
		{"OK", &fakeLedger{ready: open}, "", ""},
		{"ErrRecovering", &fakeLedger{ready: make(chan struct{})}, "recovering", ""},
		{"ErrStopped", &fakeLedger{ready: open, err: errors.New("fsync journal: input/output error in /data/bets.csv.journal")}, "", "stopped"},
		{"ErrDamagedWhileIndexing", &fakeLedger{ready: make(chan struct{}), err: errors.New("damage")}, "recovering", "stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ledger := func() admin.Ledger { return tt.ledger }
			for _, c := range []struct {
				check admin.Check
				name  string
				want  string
			}{
				{admin.RecoveryCheck(ledger), admin.CheckRecovery, tt.recovery},
				{admin.StoreCheck(ledger), admin.CheckStore, tt.store},
			} {
				if c.check.Name != c.name {
					t.Errorf("check named %q, want %q", c.check.Name, c.name)
				}
				err := c.check.Check()
				switch {
				case c.want == "" && err != nil:
					t.Errorf("%s: %v, want it to pass", c.name, err)
				case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
					t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
				case err != nil && strings.Contains(err.Error(), "/data"):
					t.Errorf("%s: %v shows the ledger's error; the page says a state, the log the details", c.name, err)
				}
			}
		})
	}
}

package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestBench_RunAdmin: a run with the admin listener on polls it during the
// upload and checks every answer, in-process and with the server binary,
// unless told not to poll; a group has no admin variant.
func TestBench_RunAdmin(t *testing.T) {
	const agencies, bets = 2, 500
	tests := []struct {
		name      string
		serverBin bool
		poll      time.Duration
		central   string
	}{
		{"OKInProcess", false, DefaultAdminPoll, "in-process, admin on"},
		{"OKNotPolled", false, 0, "in-process, admin on"},
		{"OKServerBin", true, DefaultAdminPoll, ", admin on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := Scenario{Agencies: agencies, Bets: bets, Dir: t.TempDir(), AdminPoll: tt.poll}
			if tt.serverBin {
				if testing.Short() {
					t.Skip("builds the server binary")
				}
				sc.ServerBin = serverBinary(t)
			}
			b, err := Prepare(sc)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			r, err := b.RunVariant(context.Background(), 1, Variant{Centrals: 1, Admin: true})
			if err != nil {
				t.Fatal(err)
			}
			checkSane(t, r, agencies, bets)
			if polled := r.AdminPolls >= 2; !r.Admin || polled != (tt.poll > 0) || !strings.HasSuffix(r.Central, tt.central) {
				t.Errorf("admin %v, polls %d, central %q; want on, polled %v, %q", r.Admin, r.AdminPolls, r.Central, tt.poll > 0, tt.central)
			}
		})
	}
	t.Run("ErrCluster", func(t *testing.T) {
		b, err := Prepare(Scenario{Agencies: 1, Bets: 10, Dir: t.TempDir(), Centrals: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.RunVariant(context.Background(), 1, Variant{Centrals: 3, Admin: true}); err == nil {
			t.Error("the admin variant of a group ran")
		}
	})
}

package bench

import (
	"context"
	"strings"
	"testing"
)

// TestBench_RunAdmin: a run with the admin listener on polls it during the
// upload and checks every answer, in-process and with the server binary;
// a group has no admin variant.
func TestBench_RunAdmin(t *testing.T) {
	const agencies, bets = 2, 500
	tests := []struct {
		name      string
		serverBin bool
		central   string
	}{
		{"OKInProcess", false, "in-process, admin on"},
		{"OKServerBin", true, ", admin on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := Scenario{Agencies: agencies, Bets: bets, Dir: t.TempDir()}
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
			if !r.Admin || r.AdminPolls < 2 || !strings.HasSuffix(r.Central, tt.central) {
				t.Errorf("admin %v, polls %d, central %q; want on, polled, %q", r.Admin, r.AdminPolls, r.Central, tt.central)
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

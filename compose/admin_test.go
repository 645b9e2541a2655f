package compose

import (
	"slices"
	"testing"
)

// TestWrite_Admin: every central's service (each node of a replicated one)
// publishes its admin listener on the host's loopback, each on a port of
// its own, listens on every interface of its container, and is probed by
// its own binary; agencies get neither.
func TestWrite_Admin(t *testing.T) {
	tests := []struct {
		name  string
		opt   Options
		ports map[string]string // service → its one port mapping
	}{
		{"OK/Single", Options{Agencies: 2}, map[string]string{"server": "127.0.0.1:9090:9090"}},
		{"OK/Cluster", Options{Agencies: 2, Centrals: 3}, map[string]string{
			"server1": "127.0.0.1:9090:9090", "server2": "127.0.0.1:9091:9090", "server3": "127.0.0.1:9092:9090"}},
		{"OK/HostPort", Options{Agencies: 1, Centrals: 3, AdminHostPort: 19090}, map[string]string{
			"server1": "127.0.0.1:19090:9090", "server2": "127.0.0.1:19091:9090", "server3": "127.0.0.1:19092:9090"}},
		{"OK/Ephemeral", Options{Agencies: 1, AdminHostPort: EphemeralAdminPort}, map[string]string{"server": "127.0.0.1::9090"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, p := generate(t, tt.opt)
			for name, svc := range p.Services {
				want, central := tt.ports[name]
				if !central {
					if svc.Ports != nil || svc.Healthcheck != nil {
						t.Errorf("%s: ports %q, healthcheck %+v; an agency has neither", name, svc.Ports, svc.Healthcheck)
					}
					continue
				}
				if !slices.Equal(svc.Ports, []string{want}) {
					t.Errorf("%s: ports %q, want [%q]", name, svc.Ports, want)
				}
				if !slices.Contains(svc.Environment, "ADMIN_ADDRESS=0.0.0.0:9090") {
					t.Errorf("%s: environment %q without ADMIN_ADDRESS=0.0.0.0:9090", name, svc.Environment)
				}
				h := svc.Healthcheck
				if h == nil {
					t.Fatalf("%s: no healthcheck:\n%s", name, out)
				}
				if !slices.Equal(h.Test, []string{"CMD", "/server", "-health", "http://127.0.0.1:9090/readyz"}) ||
					h.Interval != "5s" || h.Timeout != "3s" || h.Retries != 3 || h.StartPeriod != "5s" {
					t.Errorf("%s: healthcheck %+v", name, *h)
				}
			}
			if got := len(tt.ports); got != max(tt.opt.Centrals, 1) {
				t.Fatalf("the test names %d centrals for %d", got, tt.opt.Centrals)
			}
		})
	}
}

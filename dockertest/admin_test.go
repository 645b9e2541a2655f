package dockertest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"lottery/compose"
	"lottery/internal/testutil"
)

// healthTimeout bounds the wait for Docker's healthcheck to report: its
// first probe runs an interval (5 s) after the start.
const healthTimeout = time.Minute

// health is a container's healthcheck status: starting, healthy or
// unhealthy.
func (d *deployment) health(service string) string {
	d.t.Helper()
	return strings.TrimSpace(d.docker("inspect", "-f", "{{.State.Health.Status}}", d.container(service)))
}

// adminURL is where the host reaches a central's admin listener: the
// loopback port Docker published it on.
func (d *deployment) adminURL(service string) string {
	d.t.Helper()
	out := d.docker("port", d.container(service), strconv.Itoa(compose.AdminPort)+"/tcp")
	addr := strings.TrimSpace(strings.Split(out, "\n")[0])
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		d.t.Fatalf("%s's admin port is published on %q, want the host's loopback only", service, addr)
	}
	return "http://" + addr
}

// checkAdmin checks a running central through Docker's eyes and the
// operator's: the healthcheck (the image's own -health probe of /readyz)
// makes `docker ps` show it healthy, and its admin listener, published on
// the host's loopback, counts the stored bets.
func (d *deployment) checkAdmin(service string, stored int) {
	d.t.Helper()
	testutil.WaitFor(d.t, healthTimeout, service+" healthy", func() bool { return d.health(service) == "healthy" })
	ps := d.docker("ps", "--filter", "name=^"+d.container(service)+"$", "--format", "{{.Status}}")
	if !strings.Contains(ps, "(healthy)") {
		d.t.Errorf("docker ps shows %s as %q, want (healthy)", service, strings.TrimSpace(ps))
	}
	resp, err := http.Get(d.adminURL(service) + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum int
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "lottery_bets_stored_total{") {
			n, err := strconv.Atoi(l[strings.LastIndex(l, " ")+1:])
			if err != nil {
				d.t.Errorf("/metrics line %q", l)
			}
			sum += n
		}
	}
	if sum != stored {
		d.t.Errorf("%s's /metrics counts %d bets stored, its bets file has %d", service, sum, stored)
	}
}

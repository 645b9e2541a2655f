package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// Check is one readiness condition of /readyz: Check returns nil when the
// condition holds, or an error saying what is missing ("no leader known").
// It runs in the request, so it must answer at once (read an atomic, not
// ask the Raft group), and its error is shown to whoever asks: a state,
// never a name or a document.
type Check struct {
	Name  string
	Check func() error
}

// validName reports whether a check's name can be a path segment and a
// line's label: lowercase letters, digits, '_' and '-'.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Gate is a readiness condition that fails until it is opened, for a step
// that happens once: "recovery" until the store is open and recovered.
type Gate struct {
	name, waiting string
	open          atomic.Bool
}

// NewGate returns a closed gate whose check is called name and fails with
// waiting ("recovering the store") until Open.
func NewGate(name, waiting string) *Gate { return &Gate{name: name, waiting: waiting} }

// Open makes the gate's check pass, for good.
func (g *Gate) Open() { g.open.Store(true) }

// Check returns the gate as a readiness check.
func (g *Gate) Check() Check {
	return Check{Name: g.name, Check: func() error {
		if !g.open.Load() {
			return errors.New(g.waiting)
		}
		return nil
	}}
}

// result is one check's outcome.
type result struct {
	name string
	err  error
}

func (r result) line() string {
	if r.err != nil {
		return "[-]" + r.name + " failed: " + oneLine(r.err.Error())
	}
	return "[+]" + r.name + " ok"
}

// oneLine keeps a check's message on its line of the listing.
func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// serveChecks answers a health endpoint as etcd and Kubernetes do: 200
// "ok" when every check passes; otherwise, or with ?verbose, one line per
// check ("[+]store ok", "[-]leader failed: no leader known") and a verdict
// line ("readyz check passed" / "readyz check failed"), with 503 when a
// check failed, so the failing check is always named.
func serveChecks(w http.ResponseWriter, r *http.Request, endpoint string, checks []Check) {
	results := make([]result, len(checks))
	failed := false
	for i, c := range checks {
		results[i] = result{c.Name, c.Check()}
		failed = failed || results[i].err != nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if !failed && !r.URL.Query().Has("verbose") {
		fmt.Fprintln(w, "ok")
		return
	}
	var b strings.Builder
	for _, res := range results {
		b.WriteString(res.line())
		b.WriteByte('\n')
	}
	verdict := "passed"
	if failed {
		verdict = "failed"
	}
	fmt.Fprintf(&b, "%s check %s\n", endpoint, verdict)
	w.Write([]byte(b.String()))
}

// serveCheck answers /readyz/<name>: that one check, 200 "ok" or 503 with
// its line; 404 for a check that does not exist.
func serveCheck(w http.ResponseWriter, r *http.Request, checks []Check) {
	name := r.PathValue("check")
	for _, c := range checks {
		if c.Name == name {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			res := result{c.Name, c.Check()}
			if res.err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, res.line())
				return
			}
			fmt.Fprintln(w, "ok")
			return
		}
	}
	http.NotFound(w, r)
}

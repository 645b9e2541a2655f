package dockertest

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"lottery/compose"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/pki"
)

// intruderService is an agency container that holds agency 2's key and
// certificate (what a thief of agency 2's files would have) but says it is
// agency 1 (CLI_ID=1), with a data file of its own for agency 1 that wins
// every time: what it would plant if the central believed it.
func intruderService(d *deployment) compose.Service {
	const stolen = 2
	mount := func(f string) string { return "./.pki/" + f + ":" + compose.PKIDir + "/" + f + ":ro" }
	server := d.file.Service(compose.ServerService)
	return compose.Service{
		Name:          "intruder",
		ContainerName: d.container("intruder"),
		Image:         compose.ClientImage,
		Environment: []string{
			"CLI_ID=1",
			"CLI_TLS_CERT=" + compose.PKIDir + "/" + pki.AgencyCertFile(stolen),
			"CLI_TLS_KEY=" + compose.PKIDir + "/" + pki.AgencyKeyFile(stolen),
			"CLI_RECONNECT_INITIAL=100ms", "CLI_RECONNECT_MAX=500ms",
		},
		Networks: server.Networks,
		Volumes: []string{
			"./client/config.yaml:" + compose.ClientConfig + ":ro",
			"./intruder/.data:" + compose.DataDir + ":ro",
			mount(pki.AgencyCertFile(stolen)), mount(pki.AgencyKeyFile(stolen)), mount(pki.CAFile),
		},
		DependsOn: []string{compose.ServerService},
	}
}

// TestAttack_StolenKeyClaimsOtherAgency runs five agencies and, on the same
// network at the same time, an intruder with agency 2's key claiming to be
// agency 1. The central must refuse it (wrong_agency: the agency is the
// certificate's, never what the peer says), and the run must end as if it
// had never been there: every real agency exits 0 with its own winners, and
// the bets file holds exactly the real agencies' bets.
func TestAttack_StolenKeyClaimsOtherAgency(t *testing.T) {
	const n = 5
	d := newDeployment(t, n)
	// Slow uploads (about five seconds), so the intruder comes during the run.
	files := slowAgencies(d, n)
	if err := os.MkdirAll(d.path("intruder/.data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := gendata.WriteFile(d.path("intruder/.data"), 1, 20, 20, 99, true); err != nil {
		t.Fatal(err)
	}
	d.file.Services = append(d.file.Services, intruderService(d))
	d.up()

	if code := d.waitExit("intruder"); code == 0 {
		t.Errorf("the intruder exited 0; its log:\n%s", d.rawLogs("intruder"))
	}
	intruder := d.logs("intruder")
	if l, ok := findFail(intruder, "wrong_agency"); ok {
		t.Logf("the intruder: %s", l.Raw)
	} else {
		t.Errorf("the intruder logged no fail line with wrong_agency; its log:\n%s", d.rawLogs("intruder"))
	}
	if n := len(testutil.Find(intruder, "consulta_ganadores", "success")); n != 0 {
		t.Errorf("the intruder received winners")
	}

	for a := 1; a <= n; a++ {
		name := "client" + strconv.Itoa(a)
		if code := d.waitExit(name); code != 0 {
			t.Errorf("%s exited with code %d", name, code)
		}
		lines := d.logs(name)
		noFail(t, name, lines)
		if got, want := winners(t, lines, name), a%3; got != want {
			t.Errorf("%s: cant_ganadores %d, want %d", name, got, want)
		}
	}

	server := d.logs("server")
	refused, draw := -1, -1
	for i, l := range server {
		switch {
		case l.Result == "fail" && l.Get("code") == "wrong_agency":
			if refused < 0 {
				refused = i
			}
		case l.Result == "fail":
			// The refusal must be the intruder's only trace: a real
			// agency's connection failing here means it was disturbed.
			t.Errorf("server: a failure other than the intruder's refusal: %s", l.Raw)
		case l.Action == "sorteo":
			draw = i
		}
	}
	switch {
	case refused < 0:
		t.Errorf("the central logged no fail line with code: wrong_agency; its log:\n%s", d.rawLogs("server"))
	case draw >= 0 && draw < refused:
		t.Errorf("the intruder came after the draw: the test proves less than it says")
	default:
		t.Logf("the central: %s", server[refused].Raw)
	}

	ack, _ := acked(t, server)
	final := checkWholeBatches(t, d.copyBets(), files, ack, slowBatch)
	for a, bets := range files {
		if final[a] != len(bets) {
			t.Errorf("agency %d: %d bets stored, want %d", a, final[a], len(bets))
		}
	}
}

// findFail returns the first `result: fail` line that mentions what.
func findFail(lines []testutil.Line, what string) (testutil.Line, bool) {
	for _, l := range testutil.Results(lines, "fail") {
		if strings.Contains(l.Raw, what) {
			return l, true
		}
	}
	return testutil.Line{}, false
}

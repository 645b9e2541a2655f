package dockertest

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"lottery"
	"lottery/audit"
	"lottery/compose"
	"lottery/csvrow"
	"lottery/internal/testutil"
)

// countRows counts the bets in an agency file.
func countRows(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csvrow.NewReader(f, 1<<16)
	n := 0
	for {
		_, err := r.Read()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

// TestCompose_FiveAgencies is the course's run: five agencies on the real
// dataset (generated data with the same winners when it is not there).
func TestCompose_FiveAgencies(t *testing.T) {
	d := newDeployment(t, 5)
	wantWinners := []int{2, 3, 3, 2, 0} // the real dataset's
	rows := map[int]int{}
	if dir, ok := testutil.Dataset(t); ok {
		for a := 1; a <= 5; a++ {
			name := "agency-" + strconv.Itoa(a) + ".csv"
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			d.writeFile(".data/"+name, string(b))
			rows[a] = countRows(t, d.path(".data/"+name))
		}
	} else {
		t.Logf("no dataset at %s: generated data", dir)
		for a := 1; a <= 5; a++ {
			rows[a] = len(d.writeAgencyFile(a, 2000, wantWinners[a-1]))
		}
	}
	d.up()
	for a := 1; a <= 5; a++ {
		if code := d.waitExit("client" + strconv.Itoa(a)); code != 0 {
			t.Errorf("client%d exited with code %d", a, code)
		}
	}
	stored := d.copyBets()
	d.checkAdmin("server", len(stored))
	if _, err := d.composeRun("stop", "-t", "10"); err != nil {
		t.Fatal(err)
	}

	logs := d.composeLogs()
	for a := 1; a <= 5; a++ {
		name := "client" + strconv.Itoa(a)
		lines, err := testutil.ParseAll(logs[name])
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		noFail(t, name, lines)
		if got := winners(t, lines, name); got != wantWinners[a-1] {
			t.Errorf("%s: cant_ganadores %d, want %d", name, got, wantWinners[a-1])
		}
		if l, ok := testutil.FindOne(lines, "consulta_ganadores", "success"); !ok || l.Get("client_id") != strconv.Itoa(a) {
			t.Errorf("%s: winners line %q", name, l.Raw)
		}
		// The agency checked the signed draw statement against its
		// receipts and kept them on the host (docs/audit.md).
		if l, ok := testutil.FindOne(lines, "verificar_sorteo", "success"); !ok || l.Get("apuestas_agencia") != strconv.Itoa(rows[a]) {
			t.Errorf("%s: verificar_sorteo line %q, want success with apuestas_agencia %d", name, l.Raw, rows[a])
		}
		checkReceipts(t, d.path(".receipts/agency-"+strconv.Itoa(a)+"/agency-"+strconv.Itoa(a)+".receipts"), a)
	}
	server, err := testutil.ParseAll(logs["server"])
	if err != nil {
		t.Errorf("server: %v", err)
	}
	noFail(t, "server", server)
	if n := len(testutil.Find(server, "sorteo", "success")); n != 1 {
		t.Errorf("the central logged %d sorteo lines, want 1", n)
	}
	wantShutdown(t, "server", server)
	for _, s := range d.file.Services {
		if status, code := d.state(s.Name); status != "exited" || code != 0 {
			t.Errorf("%s: %s with code %d, want exited with 0", s.Name, status, code)
		}
	}

	per := map[int]int{}
	for _, b := range stored {
		per[b.Agency]++
	}
	for a := 1; a <= 5; a++ {
		if per[a] != rows[a] {
			t.Errorf("agency %d: %d bets stored, its file has %d", a, per[a], rows[a])
		}
	}
	if len(stored) != sum(rows) {
		t.Errorf("%d bets stored, want %d", len(stored), sum(rows))
	}
}

// checkReceipts reads an agency's receipts file as an auditor would: its
// agency, at least one checkpoint, and the signed draw statement at its end.
func checkReceipts(t *testing.T, path string, agency int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("agency %d's receipts: %v", agency, err)
		return
	}
	defer f.Close()
	r, err := audit.ReadReceipts(f)
	switch {
	case err != nil:
		t.Errorf("%s: %v", path, err)
	case r.Agency != uint32(agency) || len(r.Checkpoints) == 0 || len(r.Records) == 0 || r.Statement == nil:
		t.Errorf("%s: agency %d, %d checkpoints, %d records, statement %v; want agency %d's, with the statement", path,
			r.Agency, len(r.Checkpoints), len(r.Records), r.Statement != nil, agency)
	}
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestCompose_BasicConfig runs three agencies with a config.ini of only the
// four keys the course knows: the number of agencies comes from AGENCIES
// in the environment, and the draw waits for exactly those three.
func TestCompose_BasicConfig(t *testing.T) {
	d := newDeployment(t, 3)
	d.writeFile("server/config.ini", "[DEFAULT]\nSERVER_PORT = 12345\nSERVER_IP = \nSERVER_LISTEN_BACKLOG = 5\nLOGGING_LEVEL = INFO\n")
	wantWinners := []int{1, 2, 0}
	for a := 1; a <= 3; a++ {
		d.writeAgencyFile(a, 300, wantWinners[a-1])
	}
	d.up()
	for a := 1; a <= 3; a++ {
		name := "client" + strconv.Itoa(a)
		if code := d.waitExit(name); code != 0 {
			t.Errorf("%s exited with code %d", name, code)
		}
		lines := d.logs(name)
		noFail(t, name, lines)
		if got := winners(t, lines, name); got != wantWinners[a-1] {
			t.Errorf("%s: cant_ganadores %d, want %d", name, got, wantWinners[a-1])
		}
	}
	server := d.logs("server")
	noFail(t, "server", server)
	if l, ok := testutil.FindOne(server, "config", "success"); !ok || l.Get("agencies") != "3" {
		t.Errorf("config line %q, want agencies: 3", l.Raw)
	}
	draw := -1
	finished := 0
	for i, l := range server {
		switch {
		case l.Action == "agencia_finalizada" && l.Result == "success":
			finished++
		case l.Action == "sorteo":
			if draw >= 0 {
				t.Errorf("a second sorteo: %s", l.Raw)
			}
			draw = i
			if finished != 3 {
				t.Errorf("sorteo after %d agencies finished, want 3", finished)
			}
			if got := l.Get("ganadores"); got != "3" {
				t.Errorf("sorteo: ganadores %s, want 3", got)
			}
		}
	}
	if draw < 0 {
		t.Error("no sorteo line")
	}
}

// TestCompose_SingleBet runs an agency with no data file: it sends the bet
// of its environment (NOMBRE … NUMERO) and the central stores it.
func TestCompose_SingleBet(t *testing.T) {
	d := newDeployment(t, 1)
	d.up()
	if code := d.waitExit("client1"); code != 0 {
		t.Errorf("client1 exited with code %d", code)
	}
	client := d.logs("client1")
	noFail(t, "client1", client)
	sent, ok := testutil.FindOne(client, "apuesta_enviada", "success")
	if !ok {
		t.Fatalf("client1: want one apuesta_enviada line; log:\n%s", d.rawLogs("client1"))
	}
	server := d.logs("server")
	stored, ok := testutil.FindOne(server, "apuesta_almacenada", "success")
	if !ok {
		t.Fatalf("server: want one apuesta_almacenada line; log:\n%s", d.rawLogs("server"))
	}
	env := map[string]string{}
	for _, v := range compose.SampleBet {
		env[v.Name] = v.Value
	}
	for _, l := range []testutil.Line{sent, stored} {
		if l.Get("dni") != env["DOCUMENTO"] || l.Get("numero") != env["NUMERO"] {
			t.Errorf("%q: want dni %s, numero %s", l.Raw, env["DOCUMENTO"], env["NUMERO"])
		}
	}
	// The sample bet plays the winning number.
	if got := winners(t, client, "client1"); got != 1 {
		t.Errorf("client1: cant_ganadores %d, want 1", got)
	}
	bets := d.copyBets()
	if len(bets) != 1 || bets[0].Document != env["DOCUMENTO"] || bets[0].FirstName != env["NOMBRE"] ||
		bets[0].LastName != env["APELLIDO"] || bets[0].Birthdate != env["NACIMIENTO"] || strconv.Itoa(bets[0].Number) != env["NUMERO"] {
		t.Errorf("bets file %+v, want the one bet of the environment %v", bets, env)
	}
}

// TestCompose_SmallBatches sets batch.maxAmount in the mounted config.yaml:
// every batch but the last carries exactly that many bets.
func TestCompose_SmallBatches(t *testing.T) {
	const maxAmount, n = 16, 70
	d := newDeployment(t, 1)
	d.setClientConfig(map[string]any{"batch.maxAmount": maxAmount})
	bets := d.writeAgencyFile(1, n, 1)
	d.up()
	if code := d.waitExit("client1"); code != 0 {
		t.Errorf("client1 exited with code %d", code)
	}
	server := d.logs("server")
	noFail(t, "server", server)
	ack, sizes := acked(t, server)
	want := []int{16, 16, 16, 16, 6}
	if !slices.Equal(sizes[1], want) {
		t.Errorf("apuesta_recibida cantidad %v, want %v", sizes[1], want)
	}
	checkWholeBatches(t, d.copyBets(), map[int][]lottery.Bet{1: bets}, ack, maxAmount)
}

// TestCompose_ConfigChange edits the mounted config files between two runs:
// the next up uses them, with the same images.
func TestCompose_ConfigChange(t *testing.T) {
	d := newDeployment(t, 1)
	run := func() (client, server testutil.Line) {
		t.Helper()
		d.up()
		d.waitExit("client1")
		c, ok1 := testutil.FindOne(d.logs("client1"), "config", "success")
		s, ok2 := testutil.FindOne(d.logs("server"), "config", "success")
		if !ok1 || !ok2 {
			t.Fatalf("want one config line from each: client %q, server %q", c.Raw, s.Raw)
		}
		if _, err := d.composeRun("down", "-t", "5"); err != nil {
			t.Fatal(err)
		}
		return c, s
	}
	images := d.docker("image", "inspect", "-f", "{{.Id}}", compose.ServerImage, compose.ClientImage)

	c, s := run()
	if c.Get("batch_max_amount") != "100" || c.Get("loop_amount") != "0" || s.Get("logging_level") != "INFO" {
		t.Fatalf("first run with the repository's config: client %q, server %q", c.Raw, s.Raw)
	}
	d.setClientConfig(map[string]any{"batch.maxAmount": 7, "loop.amount": 3})
	d.setServerConfig(map[string]string{"LOGGING_LEVEL": "DEBUG", "SERVER_LISTEN_BACKLOG": "9"})
	c, s = run()
	if c.Get("batch_max_amount") != "7" || c.Get("loop_amount") != "3" {
		t.Errorf("client config after the change: %q", c.Raw)
	}
	if s.Get("logging_level") != "DEBUG" || s.Get("listen_backlog") != "9" {
		t.Errorf("server config after the change: %q", s.Raw)
	}
	if after := d.docker("image", "inspect", "-f", "{{.Id}}", compose.ServerImage, compose.ClientImage); after != images {
		t.Errorf("the images changed between the runs: %q, then %q", images, after)
	}
}

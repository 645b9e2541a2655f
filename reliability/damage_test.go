package reliability

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"

	"golang.org/x/mod/sumdb/tlog"

	"lottery/gendata"
	"lottery/internal/testutil"
)

// The damage suite's upload and the parts of the file formats it needs
// (storage/header.go, storage/journal.go, storage/verify.go): the test
// reads and writes them as an operator with a hex editor would, black-box.
const (
	dmgAgencies  = 3
	dmgPerAgency = 60_000 // 180 000 rows, about 8 MB: more than dmgMaxTail
	dmgBatch     = 100    // 1 800 batch records, groups of a few each

	// A version 3 journal: the magic in a 4 KiB block, two 4 KiB commit
	// header slots (even generations at 4096, odd at 8192), then 64-byte
	// records.
	dmgMagic        = "LOTJRNL3"
	dmgBlock        = 4096
	dmgRecordsStart = 3 * dmgBlock
	dmgHeaderSize   = 256
	dmgRecordSize   = 64
	dmgGroupEnd     = 1 // flags bit 0: the last record of its group commit
	dmgKindBatch    = 1
	dmgKindDone     = 2
	// dmgMaxTail mirrors storage's maxTailBytes (maxGroupBytes 4 MiB plus
	// 1 MiB): the most bytes past the committed rows recovery cuts.
	dmgMaxTail = 4<<20 + 1<<20
	// dmgMaxTailRecords mirrors storage's maxGroupCommits+1: the most
	// records past the committed ones recovery cuts.
	dmgMaxTailRecords = 1024 + 1
)

var dmgCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// dmgWinners are the winners per agency of the generated files.
var dmgWinners = []int{2, 0, 3}

// dmgRecord is one journal record as the test decodes it.
type dmgRecord struct {
	index      int
	off        int64 // offset in the journal
	kind       byte
	flags      byte
	group      uint16
	agency     uint32
	seq        uint64
	start, end int64 // bytes of the bets file it covers
	count      uint32
	chain      [16]byte
}

// dmgGroup is a group commit: records first..last (indexes). Group i is
// generation i: the base record's group is 0.
type dmgGroup struct{ first, last int }

// dmgState is what a commit header says the two files hold.
type dmgState struct{ journal, bets, count, batches, finished int64 }

// dmgHeader is a commit header (storage/header.go):
//
//	0 gen | 8 after (5 × u64) | 48 before (5 × u64) | 88 chain (16)
//	| 104 root (32) | 136 zeros | 252 CRC-32C of bytes 0-251
type dmgHeader struct {
	gen           uint64
	after, before dmgState
	chain         [16]byte
}

func (h dmgHeader) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, h.gen)
	for _, st := range []dmgState{h.after, h.before} {
		for _, v := range []int64{st.journal, st.bets, st.count, st.batches, st.finished} {
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		}
	}
	b = append(b, h.chain[:]...)
	b = append(b, make([]byte, dmgHeaderSize-4-len(b))...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, dmgCastagnoli))
}

// parseDmgHeader decodes the header slot at off, reporting false for one
// whose CRC does not check out (torn, garbled or zeros).
func parseDmgHeader(j []byte, off int64) (dmgHeader, bool) {
	b := j[off : off+dmgHeaderSize]
	if crc32.Checksum(b[:dmgHeaderSize-4], dmgCastagnoli) != binary.BigEndian.Uint32(b[dmgHeaderSize-4:]) {
		return dmgHeader{}, false
	}
	h := dmgHeader{gen: binary.BigEndian.Uint64(b)}
	for i, st := range []*dmgState{&h.after, &h.before} {
		f := b[8+40*i:]
		*st = dmgState{int64(binary.BigEndian.Uint64(f)), int64(binary.BigEndian.Uint64(f[8:])),
			int64(binary.BigEndian.Uint64(f[16:])), int64(binary.BigEndian.Uint64(f[24:])), int64(binary.BigEndian.Uint64(f[32:]))}
	}
	copy(h.chain[:], b[88:104])
	return h, true
}

// dmgSlot is where the header of generation gen is written.
func dmgSlot(gen uint64) int64 { return dmgBlock * (1 + int64(gen%2)) }

// ackedState is what a finished upload left: every batch in it was
// acknowledged (every agency exited 0).
type ackedState struct {
	data          dataset // the agencies' files
	bets, journal []byte
	tree          []byte // the audit log's stored hashes (bets.csv.tlog)
	recs          []dmgRecord
	groups        []dmgGroup
	groupOf       []int     // record index → group index
	head          dmgHeader // the newest commit header: the last group's
}

// dmgFiles are the files of one case, damaged in memory then written:
// the bets, the journal and the audit log's hashes.
type dmgFiles struct {
	bets, journal, tree []byte
	noJournal           bool
	noBets              bool
	noTree              bool
}

func (a *ackedState) files() *dmgFiles {
	return &dmgFiles{bets: slices.Clone(a.bets), journal: slices.Clone(a.journal), tree: slices.Clone(a.tree)}
}

// rec returns record i, failing the test if the upload made fewer.
func (a *ackedState) rec(t *testing.T, i int) dmgRecord {
	t.Helper()
	if i < 0 || i >= len(a.recs) {
		t.Fatalf("the upload made %d journal records; the case needs record %d", len(a.recs), i)
	}
	return a.recs[i]
}

// covering returns the record whose bytes hold pos of the bets file: the
// offset the central names for a change there is that record's start (the
// end of the record before it).
func (a *ackedState) covering(t *testing.T, pos int64) dmgRecord {
	t.Helper()
	for _, r := range a.recs {
		if r.start <= pos && pos < r.end {
			return r
		}
	}
	t.Fatalf("no record covers byte %d of the bets file", pos)
	return dmgRecord{}
}

// stateAfter is what the files held after group gi (-1: before the base
// record): what a commit header of that group says, and what Repair keeps
// when gi is the last whole group that verifies.
func (a *ackedState) stateAfter(gi int) dmgState {
	st := dmgState{journal: dmgRecordsStart}
	if gi < 0 {
		return st
	}
	last := a.recs[a.groups[gi].last]
	st.journal, st.bets = last.off+dmgRecordSize, last.end
	for _, r := range a.recs[:last.index+1] {
		switch r.kind {
		case dmgKindBatch:
			st.count += int64(r.count)
			st.batches++
		case dmgKindDone:
			st.finished++
		default: // the base record
			st.count += int64(r.count)
		}
	}
	return st
}

// groupBefore returns the last group whose records all come before record
// k: what a scan that stops at record k keeps (-1: none).
func (a *ackedState) groupBefore(k int) int {
	gi := -1
	for i, g := range a.groups {
		if g.last >= k {
			break
		}
		gi = i
	}
	return gi
}

// betsUpTo counts the bets of the records before journal offset off.
func (a *ackedState) betsUpTo(off int64) int64 {
	var n int64
	for _, r := range a.recs {
		if r.off < off && r.kind != dmgKindDone {
			n += int64(r.count)
		}
	}
	return n
}

// rowStart returns the start of the row after the one that holds pos.
func (a *ackedState) rowStart(t *testing.T, pos int64) int64 {
	t.Helper()
	i := bytes.IndexByte(a.bets[pos:], '\n')
	if i < 0 {
		t.Fatalf("no row starts after byte %d", pos)
	}
	return pos + int64(i) + 1
}

// lastRows is the record that covers the last rows of the bets file: the
// one the central checks the end of the file against before it listens.
func (a *ackedState) lastRows(t *testing.T) dmgRecord {
	t.Helper()
	return a.covering(t, int64(len(a.bets))-1)
}

// repaired is the journal Repair must leave when it keeps the groups up to
// gi of orig: its records region up to there, the magic block as it was,
// the kept generation's slot a quiescent header (before = after: no group
// in doubt) and the other slot zeros.
func (a *ackedState) repaired(orig []byte, gi int) []byte {
	st := a.stateAfter(gi)
	j := slices.Clone(orig[:st.journal])
	h := dmgHeader{gen: uint64(gi), after: st, before: st, chain: a.recs[a.groups[gi].last].chain}
	copy(j[dmgSlot(h.gen):], h.encode())
	clear(j[dmgSlot(h.gen+1) : dmgSlot(h.gen+1)+dmgHeaderSize])
	return j
}

// parseJournal decodes a version 3 journal's records (storage/journal.go).
func parseJournal(t *testing.T, j []byte) []dmgRecord {
	t.Helper()
	if !bytes.HasPrefix(j, []byte(dmgMagic)) || len(j) < dmgRecordsStart || (len(j)-dmgRecordsStart)%dmgRecordSize != 0 {
		t.Fatalf("the journal (%d bytes) is not %s, its blocks and whole records", len(j), dmgMagic)
	}
	var recs []dmgRecord
	var prevEnd int64
	for off := dmgRecordsStart; off < len(j); off += dmgRecordSize {
		b := j[off : off+dmgRecordSize]
		r := dmgRecord{
			index: len(recs), off: int64(off), kind: b[0], flags: b[1], group: binary.BigEndian.Uint16(b[2:4]),
			agency: binary.BigEndian.Uint32(b[4:8]), seq: binary.BigEndian.Uint64(b[8:16]),
			start: prevEnd, end: int64(binary.BigEndian.Uint64(b[16:24])), count: binary.BigEndian.Uint32(b[24:28]),
		}
		copy(r.chain[:], b[44:60])
		prevEnd = r.end
		recs = append(recs, r)
	}
	return recs
}

// dmgFlip flips bit mask of byte i of b.
func dmgFlip(b []byte, i int64, mask byte) { b[i] ^= mask }

// dmgFixCRC rewrites the CRC-32C of the journal record at off, as someone
// editing the file on purpose would.
func dmgFixCRC(j []byte, off int64) {
	rec := j[off : off+dmgRecordSize]
	binary.BigEndian.PutUint32(rec[60:], crc32.Checksum(rec[:60], dmgCastagnoli))
}

// dmgForgedRows are whole rows of a batch the acked upload never made. They
// are agency 4's (a number this central's AGENCIES=3 never welcomes): every
// agency of the upload finished, and a batch of theirs after that is out
// of place, which the index would refuse as damage; agency 4's first batch
// is a batch like any other to the store.
var dmgForgedRows = []byte("4,Santiago,González,00000001,1990-01-01,1\r\n4,Lucía,Pérez,00000002,1991-02-02,2\r\n4,Tomás,Díaz,00000003,1992-03-03,3\r\n")

// forgeGroup encodes the group the central's writer would commit next if
// agency 4 sent dmgForgedRows as its batch 1: its one record, chained to
// the journal's last, and its commit header (state before and after).
func (a *ackedState) forgeGroup(flags byte) (record []byte, h dmgHeader) {
	gen := a.head.gen + 1
	end := int64(len(a.bets) + len(dmgForgedRows))
	b := []byte{dmgKindBatch, flags}
	b = binary.BigEndian.AppendUint16(b, uint16(gen))
	b = binary.BigEndian.AppendUint32(b, 4)
	b = binary.BigEndian.AppendUint64(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	b = binary.BigEndian.AppendUint32(b, 3)
	sum := sha256.Sum256(dmgForgedRows)
	b = append(b, sum[:16]...)
	prev := a.recs[len(a.recs)-1].chain
	ch := sha256.New()
	ch.Write(prev[:])
	ch.Write(b)
	b = append(b, ch.Sum(nil)[:16]...)
	record = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, dmgCastagnoli))
	h = dmgHeader{gen: gen, before: a.head.after, after: a.head.after}
	h.after.journal += dmgRecordSize
	h.after.bets = end
	h.after.count += 3
	h.after.batches++
	copy(h.chain[:], record[44:60])
	return record, h
}

// withHeader writes h into its slot of f's journal.
func (f *dmgFiles) withHeader(h dmgHeader) { copy(f.journal[dmgSlot(h.gen):], h.encode()) }

// uploadAcked runs the built central and three agencies to the end (every
// agency told its winners, exit 0), stops the central with SIGTERM and
// returns its files: the acknowledged state every case damages a copy of.
// It checks that the test reads the format as the central writes it: the
// newest commit header describes exactly the records and rows on disk.
func uploadAcked(t *testing.T, dataDir string) *ackedState {
	t.Helper()
	d := writeDataset(t, dataDir, dmgAgencies, dmgPerAgency)
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	srv := testutil.StartServer(t, dir, dmgServerEnv(path))
	agencies := make([]*testutil.Proc, dmgAgencies)
	for a := 1; a <= dmgAgencies; a++ {
		agencies[a-1] = testutil.StartClient(t, "agency-"+strconv.Itoa(a), t.TempDir(),
			agencyEnv(d, a, srv.Addr, map[string]string{"CLI_BATCH_MAXAMOUNT": strconv.Itoa(dmgBatch)}))
	}
	for a, p := range agencies {
		p.Wait(t, 3*testutil.ExitTimeout)
		checkAgency(t, p, a+1, dmgWinners[a])
	}
	dmgStop(t, srv)
	if t.Failed() {
		t.FailNow()
	}
	s := &ackedState{data: d}
	s.bets, s.journal, s.tree = dmgRead(t, path), dmgRead(t, path+".journal"), dmgRead(t, path+".tlog")
	if rows := bytes.Count(s.bets, []byte("\n")); rows != dmgAgencies*dmgPerAgency {
		t.Fatalf("the upload stored %d rows, want %d", rows, dmgAgencies*dmgPerAgency)
	}
	s.recs = parseJournal(t, s.journal)
	first := 0
	for i, r := range s.recs {
		s.groupOf = append(s.groupOf, len(s.groups))
		if r.flags&dmgGroupEnd != 0 {
			s.groups = append(s.groups, dmgGroup{first, i})
			first = i + 1
		}
	}
	if last := s.recs[len(s.recs)-1]; last.flags&dmgGroupEnd == 0 || last.end != int64(len(s.bets)) {
		t.Fatalf("the acked journal does not end with a group end at the end of the bets file: %+v", last)
	}
	var heads []dmgHeader
	for gen := range uint64(2) {
		if h, ok := parseDmgHeader(s.journal, dmgSlot(gen)); ok && h.gen%2 == gen {
			heads = append(heads, h)
		}
	}
	if len(heads) != 2 {
		t.Fatalf("%d commit header slots check out after a clean stop, want 2", len(heads))
	}
	s.head = heads[0]
	if heads[1].gen > s.head.gen {
		s.head = heads[1]
	}
	n := len(s.groups)
	if want := (dmgHeader{gen: uint64(n - 1), after: s.stateAfter(n - 1), before: s.stateAfter(n - 2), chain: s.recs[len(s.recs)-1].chain}); s.head != want {
		t.Fatalf("the newest commit header is %+v; the records say %+v", s.head, want)
	}
	t.Logf("acked state: bets.csv %d bytes, journal %d bytes, %d records in %d group commits; the newest (generation %d) is records %d–%d",
		len(s.bets), len(s.journal), len(s.recs), n, s.head.gen, s.groups[n-1].first, s.groups[n-1].last)
	return s
}

// writeDataset writes the generated files of agencies 1..n, perAgency bets
// each with dmgWinners[a-1] winners, into dir.
func writeDataset(t *testing.T, dir string, n, perAgency int) dataset {
	t.Helper()
	for a := 1; a <= n; a++ {
		if _, err := gendata.WriteFile(dir, a, perAgency, dmgWinners[a-1], 2025, true); err != nil {
			t.Fatal(err)
		}
	}
	return dataset{dir: dir, agencies: n}
}

func dmgServerEnv(path string) map[string]string {
	return map[string]string{
		"STORAGE_FILEPATH": path,
		"AGENCIES":         strconv.Itoa(dmgAgencies),
		"LOGGING_LEVEL":    "INFO",
	}
}

// dmgStop stops a central with SIGTERM, failing unless it exits 0.
func dmgStop(t *testing.T, p *testutil.Proc) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(t, testutil.ExitTimeout); code != 0 {
		t.Fatalf("the central exited %d after SIGTERM, want 0:\n%s", code, tail(p.Output(), 20))
	}
}

// write puts the case's files in a new directory and returns the bets
// file's path.
func (f *dmgFiles) write(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	if !f.noBets {
		if err := os.WriteFile(path, f.bets, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !f.noJournal {
		if err := os.WriteFile(path+".journal", f.journal, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !f.noTree && f.tree != nil {
		if err := os.WriteFile(path+".tlog", f.tree, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// dmgSnapshot reads every file of dir.
func dmgSnapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	snap := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			continue // the agencies' .data (receipts), not the central's
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		snap[e.Name()] = b
	}
	return snap
}

// dmgDiff describes how dir changed since before, "" when it did not, and
// counts the bytes that differ (created, removed, changed or cut).
func dmgDiff(before, after map[string][]byte) (string, int64) {
	var what []string
	var n int64
	for name, a := range after {
		b, ok := before[name]
		switch {
		case !ok:
			what = append(what, fmt.Sprintf("%s created (%d bytes)", name, len(a)))
			n += int64(len(a))
		case !bytes.Equal(a, b):
			d := int64(max(len(a), len(b)) - min(len(a), len(b)))
			for i := range min(len(a), len(b)) {
				if a[i] != b[i] {
					d++
				}
			}
			what = append(what, fmt.Sprintf("%s changed (%d → %d bytes)", name, len(b), len(a)))
			n += d
		}
	}
	for name, b := range before {
		if _, ok := after[name]; !ok {
			what = append(what, fmt.Sprintf("%s removed", name))
			n += int64(len(b))
		}
	}
	slices.Sort(what)
	return strings.Join(what, ", "), n
}

// refusal is the expected outcome "the central refuses the files": the
// damage it names, and when it finds it.
type refusal struct {
	journal bool     // the journal is the file named, else the bets file
	tree    bool     // the audit log's hashes are the file named
	offset  int64    // the offset named
	what    []string // parts of the error, each
	// serving: found by the background index or verification, after the
	// central listened (it then stops: shutdown cause damage); else found
	// before it listens, in the constant-time check of the tail.
	serving bool
	// cutBets is what the central may cut of the bets file before the
	// background verification finds the damage (see dmgLimits); 0 for
	// every true refusal: no byte changed.
	cutBets int64
}

// recovery is the expected outcome "the central starts": what recovery
// cut, what it counts, and the files it leaves.
type recovery struct {
	cutBets, cutJournal int64
	bets, journal       []byte
	apuestas, finished  int64
}

// caseTable collects one row per case of a suite, four columns, and logs
// them as a table at the end: what the closing note quotes.
type caseTable struct {
	title, header string // the header: four tab-separated column names
	rows          [][4]string
}

func (tb *caseTable) add(a, b, c, d string) { tb.rows = append(tb.rows, [4]string{a, b, c, d}) }

func (tb *caseTable) log(t *testing.T) {
	t.Helper()
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, tb.header)
	for _, r := range tb.rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3])
	}
	w.Flush()
	t.Logf("%s (%d cases):\n%s", tb.title, len(tb.rows), sb.String())
}

// lineIndex returns the index in lines of the first line with the action
// and result ("" matches any result), or -1.
func lineIndex(lines []testutil.Line, action, result string) int {
	return slices.IndexFunc(lines, func(l testutil.Line) bool {
		return l.Action == action && (result == "" || l.Result == result)
	})
}

// expectRefusal starts the built central on path and checks that it
// refuses the files: exit 1 and exactly one `recuperar | result: fail`
// line naming the damage, with no byte of the directory changed; before
// it listens (no `escuchar` line), or, when want.serving, after its
// `escuchar` line and followed by `shutdown | result: fail | cause:
// damage`.
func expectRefusal(t *testing.T, tb *caseTable, name, damage, path string, want refusal) {
	t.Helper()
	dir := filepath.Dir(path)
	before := dmgSnapshot(t, dir)
	env := dmgServerEnv(path)
	env["SERVER_PORT"] = strconv.Itoa(testutil.FreePort(t))
	for k, v := range testutil.ServerTLSEnv(t) {
		env[k] = v
	}
	p := testutil.Start(t, "server", filepath.Join(testutil.Binaries(t), testutil.ServerBin), dir, env)
	code := p.Wait(t, testutil.ExitTimeout)
	lines := p.Lines()
	fails := testutil.Find(lines, "recuperar", "fail")
	listened := lineIndex(lines, "escuchar", "success")
	after := dmgSnapshot(t, dir)
	changes, changed := dmgDiff(before, after)
	did := fmt.Sprintf("exit %d", code)
	switch {
	case len(fails) > 0 && listened >= 0:
		did = fmt.Sprintf("refused while serving (exit %d): file %s, offset %s", code, filepath.Base(fails[0].Get("file")), fails[0].Get("offset"))
	case len(fails) > 0:
		did = fmt.Sprintf("refused before listening (exit %d): file %s, offset %s", code, filepath.Base(fails[0].Get("file")), fails[0].Get("offset"))
	case listened >= 0:
		l, _ := testutil.FindOne(lines, "recuperar", "success")
		did = fmt.Sprintf("SERVED (exit %d): %s", code, dmgRecoveryText(l))
	}
	if changes != "" {
		did += "; " + changes
	}
	tb.add(name, damage, did, strconv.FormatInt(changed, 10))

	wantFile := path
	switch {
	case want.journal:
		wantFile = path + ".journal"
	case want.tree:
		wantFile = path + ".tlog"
	}
	if code != 1 {
		t.Errorf("exit %d, want 1 (refuse the files):\n%s", code, tail(p.Output(), 10))
	}
	if len(fails) != 1 {
		t.Fatalf("%d `recuperar | result: fail` lines, want 1:\n%s", len(fails), tail(p.Output(), 10))
	}
	l := fails[0]
	if got := l.Get("file"); got != wantFile {
		t.Errorf("file: %s, want %s (%s)", got, wantFile, l.Raw)
	}
	if got, _ := l.Int("offset"); int64(got) != want.offset {
		t.Errorf("offset: %s, want %d (%s)", l.Get("offset"), want.offset, l.Raw)
	}
	for _, w := range want.what {
		if !strings.Contains(l.Get("error"), w) {
			t.Errorf("error %q does not say %q", l.Get("error"), w)
		}
	}
	if !l.Has("hint") {
		t.Errorf("no hint: %s", l.Raw)
	}
	if want.serving {
		fail := lineIndex(lines, "recuperar", "fail")
		stop := slices.IndexFunc(lines, func(l testutil.Line) bool {
			return l.Action == "shutdown" && l.Result == "fail" && l.Get("cause") == "damage"
		})
		if listened < 0 || fail < listened || stop < fail {
			t.Errorf("lines escuchar at %d, recuperar fail at %d, shutdown fail cause damage at %d; want them in this order "+
				"(damage found by the background index or verification):\n%s", listened, fail, stop, tail(p.Output(), 10))
		}
	} else if n := len(testutil.Find(lines, "escuchar", "")); n != 0 {
		t.Errorf("the central listened (%d escuchar lines) on files it can refuse before listening", n)
	}
	wantAfter := before
	if want.cutBets > 0 {
		wantAfter = maps.Clone(before)
		b := wantAfter["bets.csv"]
		wantAfter["bets.csv"] = b[:len(b)-int(want.cutBets)]
	}
	if changes, changed := dmgDiff(wantAfter, after); changes != "" {
		t.Errorf("the refusing central changed the directory (%d bytes): %s", changed, changes)
	}
}

// expectRecovery starts the built central on path, stops it with SIGTERM
// and checks what recovery cut and counted and the files it left; then
// `server -check` must verify those files whole (the central stopped may
// not have finished its background verification).
func expectRecovery(t *testing.T, tb *caseTable, name, damage, path string, want recovery) {
	t.Helper()
	dir := filepath.Dir(path)
	before := dmgSnapshot(t, dir)
	p := testutil.StartServer(t, dir, dmgServerEnv(path))
	dmgStop(t, p)
	_, changed := dmgDiff(before, dmgSnapshot(t, dir))
	betsAfter, journalAfter := dmgRead(t, path), dmgRead(t, path+".journal")
	l, ok := testutil.FindOne(p.Lines(), "recuperar", "success")
	tb.add(name, damage, "recovered (exit 0): "+dmgRecoveryText(l), strconv.FormatInt(changed, 10))
	if !ok {
		t.Fatalf("no single `recuperar | result: success` line:\n%s", tail(p.Output(), 10))
	}
	for _, c := range []struct {
		key  string
		want int64
	}{{"bytes_descartados", want.cutBets}, {"journal_bytes_descartados", want.cutJournal},
		{"apuestas", want.apuestas}, {"agencias_finalizadas", want.finished}} {
		if got, _ := l.Int(c.key); int64(got) != c.want {
			t.Errorf("%s: %s, want %d (%s)", c.key, l.Get(c.key), c.want, l.Raw)
		}
	}
	if !bytes.Equal(betsAfter, want.bets) {
		t.Errorf("bets.csv after recovery: %d bytes, want exactly the %d expected bytes (first difference at %d)",
			len(betsAfter), len(want.bets), dmgFirstDiff(betsAfter, want.bets))
	}
	if !bytes.Equal(journalAfter, want.journal) {
		t.Errorf("journal after recovery: %d bytes, want exactly the %d expected bytes (first difference at %d)",
			len(journalAfter), len(want.journal), dmgFirstDiff(journalAfter, want.journal))
	}
	code, lines, out := runServerFlag(t, path, "-check")
	c, ok := testutil.FindOne(lines, "verificar", "success")
	if code != 0 || !ok || c.Get("tail_bets_bytes") != "0" || c.Get("tail_journal_bytes") != "0" ||
		c.Get("apuestas") != strconv.FormatInt(want.apuestas, 10) {
		t.Errorf("-check on the recovered files: exit %d; want 0 and verificar success with no tail and %d apuestas:\n%s", code, want.apuestas, out)
	}
}

func dmgRecoveryText(l testutil.Line) string {
	return fmt.Sprintf("apuestas %s, bytes_descartados %s, journal_bytes_descartados %s, agencias_finalizadas %s",
		l.Get("apuestas"), l.Get("bytes_descartados"), l.Get("journal_bytes_descartados"), l.Get("agencias_finalizadas"))
}

func dmgRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dmgFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// runServerFlag runs the built central with one flag (-check, -repair) on
// the bets file at path and returns its exit code and log lines.
func runServerFlag(t *testing.T, path, flag string) (int, []testutil.Line, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testutil.Context(t), testutil.ExitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), testutil.ServerBin), flag)
	cmd.Dir = filepath.Dir(path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "STORAGE_FILEPATH=" + path}
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("server %s: %v", flag, err)
	}
	return cmd.ProcessState.ExitCode(), testutil.Lines(string(out)), string(out)
}

// dmgCase is one damage and the outcome it must have.
type dmgCase struct {
	name, damage string
	apply        func(f *dmgFiles)
	refuse       *refusal
	recover      *recovery
}

// TestCentral_Damage damages copies of the files a real upload left (every
// batch in them acknowledged: each agency exited 0) and starts the built
// central on each copy. Every case ends in one of three outcomes, asserted
// exactly: the central refuses the files before it listens (what a torn
// write cannot explain in the commit header, the newest group and the
// last rows: exit 1, one `recuperar | result: fail` line naming the file
// and offset of the damage, no `escuchar` line, no byte of the directory
// changed); or it listens and its background index or verification finds
// the damage (the same line after `escuchar`, then `shutdown | result:
// fail | cause: damage`, exit 1, no byte changed); or it recovers (exit 0
// after SIGTERM) leaving exactly the expected bytes, which `-check` then
// verifies whole. The Limits cases are damages recovery cannot tell from
// a torn write, so it rolls back acknowledged data: they are asserted as
// they behave and marked LIMIT in the damage table the test logs at the
// end. Group boundaries depend on timing, so the expected offsets and cuts
// are computed from the acked journal of each run.
func TestCentral_Damage(t *testing.T) {
	testutil.Long(t)
	// The upload runs in a subtest so that its processes' logs are
	// printed only if the upload itself fails; the agencies' files live
	// in the parent's directory, for the SecondCentral case.
	var a *ackedState
	dataDir := t.TempDir()
	if !t.Run("Upload", func(t *testing.T) { a = uploadAcked(t, dataDir) }) {
		t.FailNow()
	}
	tb := &caseTable{title: "damage table", header: "case\tdamage\twhat the central did\tbytes changed"}
	defer tb.log(t)

	t.Run("Control", func(t *testing.T) {
		expectRecovery(t, tb, "control", "none (the acked files as they are)", a.files().write(t), a.all())
	})

	for _, c := range dmgRefusals(t, a) {
		t.Run("Refuses/"+c.name, func(t *testing.T) {
			f := a.files()
			c.apply(f)
			expectRefusal(t, tb, c.name, c.damage, f.write(t), *c.refuse)
		})
	}
	for _, c := range dmgRecoveries(t, a) {
		t.Run("Recovers/"+c.name, func(t *testing.T) {
			f := a.files()
			c.apply(f)
			expectRecovery(t, tb, c.name, c.damage, f.write(t), *c.recover)
		})
	}
	for _, c := range dmgLimits(t, a) {
		t.Run("Limits/"+c.name, func(t *testing.T) {
			f := a.files()
			c.apply(f)
			path := f.write(t)
			if c.refuse != nil {
				expectRefusal(t, tb, "LIMIT "+c.name, c.damage, path, *c.refuse)
				return
			}
			expectRecovery(t, tb, "LIMIT "+c.name, c.damage, path, *c.recover)
		})
	}
	t.Run("SecondCentral", func(t *testing.T) { dmgSecondCentral(t, tb, a) })
	t.Run("Check", func(t *testing.T) { dmgCheck(t, tb, a) })
	t.Run("Repair", func(t *testing.T) { dmgRepair(t, tb, a) })
	t.Run("Adopt", func(t *testing.T) { dmgAdopt(t, tb, a) })
	t.Run("Tree", func(t *testing.T) { dmgTree(t, tb, a) })
}

// dmgTree damages the audit log's stored hashes (bets.csv.tlog), which
// are derived from the journal and the rows the central proves on their
// own. A file that is missing, cut, or does not give the root the newest
// commit header names is rebuilt before the central takes a commit, the
// same bytes as before; a stored hash no root computation reads (a leaf's)
// is found by the background verification, the start refused as for any
// damage, and -check names it; -repair moves the file aside and the next
// start rebuilds it.
func dmgTree(t *testing.T, tb *caseTable, a *ackedState) {
	size := int64(len(a.tree))
	last := size - 1
	leaf := tlog.StoredHashIndex(0, 5) // leaf 5's own hash: under a subtree hash the root reads
	rebuilt := []struct {
		name, damage string
		apply        func(f *dmgFiles)
	}{
		{"Deleted", "bets.csv.tlog deleted", func(f *dmgFiles) { f.noTree = true }},
		{"Cut", fmt.Sprintf("bets.csv.tlog cut at byte %d of %d", size/2, size), func(f *dmgFiles) { f.tree = f.tree[:size/2] }},
		{"Zeroed", "bets.csv.tlog zero-filled", func(f *dmgFiles) { clear(f.tree) }},
		{"NewestHash", fmt.Sprintf("bets.csv.tlog: a bit of byte %d (its last stored hash, read for the root)", last),
			func(f *dmgFiles) { dmgFlip(f.tree, last, 0x01) }},
	}
	for _, c := range rebuilt {
		t.Run(c.name, func(t *testing.T) {
			f := a.files()
			c.apply(f)
			path := f.write(t)
			expectRecovery(t, tb, "Tree/"+c.name, c.damage, path, a.all())
			expectTree(t, path, a.tree)
		})
	}
	t.Run("LeafHash", func(t *testing.T) {
		f := a.files()
		dmgFlip(f.tree, leaf*32+7, 0x01)
		path := f.write(t)
		damage := fmt.Sprintf("bets.csv.tlog: a bit of stored hash %d (leaf 5's)", leaf)
		expectRefusal(t, tb, "Tree/LeafHash", damage, path, refusal{tree: true, offset: leaf * 32, what: []string{"stored hash", "audit log"}, serving: true})
		code, lines, out := runServerFlag(t, path, "-check")
		c, ok := testutil.FindOne(lines, "verificar", "fail")
		tb.add("Tree/LeafHash -check", damage, fmt.Sprintf("-check: exit %d, verificar fail (file %s, offset %s)", code, filepath.Base(c.Get("file")), c.Get("offset")), "0")
		if code != 1 || !ok || c.Get("file") != path+".tlog" || c.Get("offset") != strconv.FormatInt(leaf*32, 10) {
			t.Fatalf("-check: exit %d; want 1 and verificar fail naming %s.tlog at offset %d:\n%s", code, path, leaf*32, out)
		}
		code, lines, out = runServerFlag(t, path, "-repair")
		r, ok := testutil.FindOne(lines, "reparar", "success")
		tb.add("Tree/LeafHash -repair", damage, fmt.Sprintf("-repair: exit %d, moved_bets_bytes %s, moved_journal_bytes %s, broken_tree %s",
			code, r.Get("moved_bets_bytes"), r.Get("moved_journal_bytes"), filepath.Base(r.Get("broken_tree"))), "0 (renamed)")
		if code != 0 || !ok || r.Get("moved_bets_bytes") != "0" || r.Get("broken_tree") == "" {
			t.Fatalf("-repair: exit %d; want 0, nothing of the bets moved and the tree moved aside:\n%s", code, out)
		}
		if b := dmgRead(t, r.Get("broken_tree")); !bytes.Equal(b, f.tree) {
			t.Errorf("%s is not the damaged file (%d bytes, want %d)", r.Get("broken_tree"), len(b), len(f.tree))
		}
		expectRecovery(t, tb, "Tree/LeafHash then start", "(the repaired files)", path, a.all())
		expectTree(t, path, a.tree)
	})
}

// expectTree checks that the audit log's hashes beside path are exactly
// want.
func expectTree(t *testing.T, path string, want []byte) {
	t.Helper()
	if got := dmgRead(t, path+".tlog"); !bytes.Equal(got, want) {
		t.Errorf("bets.csv.tlog: %d bytes, want exactly the %d bytes the upload wrote (first difference at %d)", len(got), len(want), dmgFirstDiff(got, want))
	}
}

// all is the recovery of the acked files themselves: nothing cut, every
// bet and every finished agency counted.
func (a *ackedState) all() recovery {
	return recovery{bets: a.bets, journal: a.journal, apuestas: a.head.after.count, finished: a.head.after.finished}
}

// dmgRefusals are the damages the central must refuse, before it listens
// or while it serves.
func dmgRefusals(t *testing.T, a *ackedState) []dmgCase {
	const parse, chain, digest, cutShort = "does not parse", "does not chain", "do not match the digest", "cut short"
	jflip := func(name string, rec, byteOff int64, mask byte, fixCRC bool, what string) dmgCase {
		r := a.rec(t, int(rec))
		return dmgCase{
			name:   name,
			damage: fmt.Sprintf("journal: bit 0x%02x of byte %d of record %d (journal offset %d)%s", mask, byteOff, rec, r.off+byteOff, map[bool]string{true: ", CRC recomputed"}[fixCRC]),
			apply: func(f *dmgFiles) {
				dmgFlip(f.journal, r.off+byteOff, mask)
				if fixCRC {
					dmgFixCRC(f.journal, r.off)
				}
			},
			refuse: &refusal{journal: true, offset: r.off, what: []string{what}, serving: true},
		}
	}
	bflip := func(name, where string, pos int64) dmgCase {
		r := a.covering(t, pos)
		return dmgCase{
			name:   name,
			damage: fmt.Sprintf("bets.csv: bit 0x01 of byte %d (%s; record %d covers %d–%d)", pos, where, r.index, r.start, r.end),
			apply:  func(f *dmgFiles) { dmgFlip(f.bets, pos, 0x01) },
			refuse: &refusal{offset: r.start, what: []string{digest}, serving: true},
		}
	}
	jcut := func(name, where string, at int64) dmgCase {
		return dmgCase{
			name:   name,
			damage: fmt.Sprintf("journal cut at byte %d (%s) of %d; the newest header says %d before its group", at, where, len(a.journal), a.head.before.journal),
			apply:  func(f *dmgFiles) { f.journal = f.journal[:at] },
			refuse: &refusal{journal: true, offset: at, what: []string{cutShort}},
		}
	}
	bcut := func(name, where string, at int64) dmgCase {
		return dmgCase{
			name:   name,
			damage: fmt.Sprintf("bets.csv cut at byte %d (%s) of %d", at, where, len(a.bets)),
			apply:  func(f *dmgFiles) { f.bets = f.bets[:at] },
			refuse: &refusal{offset: at, what: []string{cutShort}},
		}
	}
	size := int64(len(a.bets))
	n := len(a.groups)
	// The newest group holds only finished records (the agencies finish
	// after their last ack); the cases below rely on it.
	if lr := a.lastRows(t); a.groupOf[lr.index] == n-1 {
		t.Fatalf("the newest group holds the last batch (record %d): the setup does not match the protocol", lr.index)
	}
	lastRows := a.lastRows(t)
	beforeNewest := a.recs[a.groups[n-2].last] // the last record of the group before the newest

	insertAt := a.rowStart(t, size/3)
	editAt := a.rowStart(t, 2*size/3)
	deleteAt := a.rowStart(t, size/4)
	deleteEnd := a.rowStart(t, deleteAt)
	inserted := []byte("2,Conan,Doyle,30000000,1990-01-01,1234\r\n")
	midRec := a.rec(t, len(a.recs)/2)
	zeroFrom := func(off int64) func(f *dmgFiles) {
		return func(f *dmgFiles) { clear(f.journal[off:]) }
	}
	longTail := bytes.Repeat(dmgForgedRows, dmgMaxTail/len(dmgForgedRows)+1)

	return []dmgCase{
		// Before listening: what the newest header, the newest group and
		// the last rows show.
		jcut("JournalCutAfterBase", "just after the base record", dmgRecordsStart+dmgRecordSize),
		jcut("JournalCutAtRecord", fmt.Sprintf("the start of record %d, mid-journal", midRec.index), midRec.off),
		jcut("JournalCutMidRecord", fmt.Sprintf("30 bytes into record %d", midRec.index), midRec.off+30),
		jcut("JournalCutBeforeNewestGroup", fmt.Sprintf("the start of record %d, the last of the group before the newest", beforeNewest.index), beforeNewest.off),
		// A journal is created whole before any row: one that ends inside
		// its blocks next to rows was cut (adopting the rows would forget
		// their sequence numbers).
		{
			name:   "JournalCutInHeaders",
			damage: fmt.Sprintf("journal cut at byte %d, inside its second header slot (no record left)", dmgSlot(1)+100),
			apply:  func(f *dmgFiles) { f.journal = f.journal[:dmgSlot(1)+100] },
			refuse: &refusal{journal: true, offset: int64(dmgSlot(1) + 100), what: []string{"inside its header blocks", "cut short"}},
		},
		{
			name:   "JournalZeroedAfterBase",
			damage: fmt.Sprintf("journal cut just after the base record and zero-filled back to its %d bytes", len(a.journal)),
			apply:  zeroFrom(dmgRecordsStart + dmgRecordSize),
			refuse: &refusal{journal: true, offset: beforeNewest.off, what: []string{parse, "zero-filled"}},
		},
		{
			name:   "JournalZeroedFromMiddle",
			damage: fmt.Sprintf("journal cut at record %d and zero-filled back to its %d bytes", midRec.index, len(a.journal)),
			apply:  zeroFrom(midRec.off),
			refuse: &refusal{journal: true, offset: beforeNewest.off, what: []string{parse, "zero-filled"}},
		},
		{
			name:   "JournalGroupBeforeNewestLastRecord",
			damage: fmt.Sprintf("journal: bit 0x01 of byte 10 of record %d, the last of the group before the newest", beforeNewest.index),
			apply:  func(f *dmgFiles) { dmgFlip(f.journal, beforeNewest.off+10, 0x01) },
			refuse: &refusal{journal: true, offset: beforeNewest.off, what: []string{parse}},
		},
		{
			name:   "JournalGroupBeforeNewestEndCleared",
			damage: fmt.Sprintf("journal: the group-end flag of record %d (the last of the group before the newest) cleared, CRC recomputed", beforeNewest.index),
			apply: func(f *dmgFiles) {
				dmgFlip(f.journal, beforeNewest.off+1, dmgGroupEnd)
				dmgFixCRC(f.journal, beforeNewest.off)
			},
			refuse: &refusal{journal: true, offset: beforeNewest.off, what: []string{"is not the end of group"}},
		},
		{
			name:   "HeadersBoth",
			damage: "journal: a bit of each commit header slot",
			apply: func(f *dmgFiles) {
				dmgFlip(f.journal, dmgSlot(0)+20, 0x01)
				dmgFlip(f.journal, dmgSlot(1)+20, 0x01)
			},
			refuse: &refusal{journal: true, offset: dmgSlot(0), what: []string{"neither commit header checks out"}},
		},
		{
			name:   "JournalMagic",
			damage: "journal: a bit of its magic",
			apply:  func(f *dmgFiles) { dmgFlip(f.journal, 0, 0x01) },
			refuse: &refusal{journal: true, offset: 0, what: []string{"not a bets journal"}},
		},
		{
			name:   "JournalMissing",
			damage: fmt.Sprintf("journal deleted next to %d bytes of bets", size),
			apply:  func(f *dmgFiles) { f.noJournal = true },
			refuse: &refusal{journal: true, offset: 0, what: []string{"no complete journal"}},
		},
		{
			name:   "JournalLongTail",
			damage: fmt.Sprintf("journal: %d zero records appended, more than one group commit writes", dmgMaxTailRecords+1),
			apply: func(f *dmgFiles) {
				f.journal = append(f.journal, make([]byte, (dmgMaxTailRecords+1)*dmgRecordSize)...)
			},
			refuse: &refusal{journal: true, offset: int64(len(a.journal)), what: []string{"more than one group commit writes"}},
		},
		bcut("BetsCutToFirstRow", "the end of the first row", a.rowStart(t, 0)),
		bcut("BetsCutAtRow", "a row boundary in the middle", a.rowStart(t, size/2)),
		bcut("BetsCutLastRow", "the start of the last row", int64(bytes.LastIndexByte(a.bets[:size-1], '\n')+1)),
		bcut("BetsEmptied", "nothing left", 0),
		{
			name:   "BetsMissing",
			damage: "bets.csv deleted next to its journal",
			apply:  func(f *dmgFiles) { f.noBets = true },
			refuse: &refusal{offset: 0, what: []string{"missing, but its journal"}},
		},
		{
			name:   "BetsRowInserted",
			damage: fmt.Sprintf("bets.csv: a row inserted at byte %d", insertAt),
			apply: func(f *dmgFiles) {
				f.bets = slices.Concat(a.bets[:insertAt], inserted, a.bets[insertAt:])
			},
			refuse: &refusal{offset: lastRows.start, what: []string{digest, "inserted, deleted or changed"}},
		},
		{
			// The file is shorter than the header says: that is what a
			// deleted row looks like before any digest is read.
			name:   "BetsRowDeleted",
			damage: fmt.Sprintf("bets.csv: the row at bytes %d–%d deleted", deleteAt, deleteEnd),
			apply: func(f *dmgFiles) {
				f.bets = slices.Concat(a.bets[:deleteAt], a.bets[deleteEnd:])
			},
			refuse: &refusal{offset: size - (deleteEnd - deleteAt), what: []string{cutShort}},
		},
		{
			name:   "BetsRowMovedToEnd",
			damage: fmt.Sprintf("bets.csv: the row at bytes %d–%d moved to the end (same length)", deleteAt, deleteEnd),
			apply: func(f *dmgFiles) {
				f.bets = slices.Concat(a.bets[:deleteAt], a.bets[deleteEnd:], a.bets[deleteAt:deleteEnd])
			},
			refuse: &refusal{offset: lastRows.start, what: []string{digest, "inserted, deleted or changed"}},
		},
		{
			name:   "BetsLastRow",
			damage: fmt.Sprintf("bets.csv: bit 0x01 of byte %d (the last row; record %d covers %d–%d)", size-3, lastRows.index, lastRows.start, lastRows.end),
			apply:  func(f *dmgFiles) { dmgFlip(f.bets, size-3, 0x01) },
			refuse: &refusal{offset: lastRows.start, what: []string{digest}},
		},
		{
			name:   "BetsLongTail",
			damage: fmt.Sprintf("bets.csv: %d bytes of whole rows appended, more than one group commit writes", len(longTail)),
			apply:  func(f *dmgFiles) { f.bets = append(f.bets, longTail...) },
			refuse: &refusal{offset: size, what: []string{"more than one group commit writes"}},
		},

		// While serving: the background index (CRC, order) and
		// verification (rows, chain) of everything before the newest group.
		jflip("JournalBaseRecord", 0, 5, 0x01, false, parse),
		jflip("JournalRecord400", 400, 12, 0x01, false, parse),
		jflip("JournalDigest", 401, 30, 0x80, false, parse),
		jflip("JournalChain", 402, 50, 0x04, false, parse),
		jflip("JournalCRC", 403, 62, 0x01, false, parse),
		jflip("JournalFlagsGroupEnd", 404, 1, dmgGroupEnd, false, parse),
		jflip("JournalDigestFixedCRC", 600, 35, 0x01, true, chain),
		jflip("JournalFlagsGroupEndFixedCRC", 700, 1, dmgGroupEnd, true, chain),
		jflip("JournalFlagsReservedFixedCRC", 800, 1, 0x02, true, parse),
		// A group or sequence number edited is out of place at its own
		// record: the index names it with what it expected there.
		jflip("JournalGroupFixedCRC", 900, 3, 0x01, true, "expected group"),
		jflip("JournalSeqFixedCRC", 950, 15, 0x01, true, "after its batch"),
		jflip("JournalEndFixedCRC", 1000, 23, 0x01, true, chain),
		jflip("JournalChainFixedCRC", 1200, 44, 0x01, true, chain),

		bflip("BetsFirstRow", "first row", 2),
		bflip("BetsMiddle", "middle", size/2),
		{
			name:   "BetsRowEdited",
			damage: fmt.Sprintf("bets.csv: the agency digit of the row at byte %d changed (%c→9), same length", editAt, a.bets[editAt]),
			apply:  func(f *dmgFiles) { f.bets[editAt] = '9' },
			refuse: &refusal{offset: a.covering(t, editAt).start, what: []string{digest}, serving: true},
		},
		{
			name:   "JournalRecord400WithTail",
			damage: "journal: a bit of record 400; bets.csv: half a row appended (a crash's tail)",
			apply: func(f *dmgFiles) {
				dmgFlip(f.journal, a.rec(t, 400).off+12, 0x01)
				f.bets = append(f.bets, dmgHalfRow...)
			},
			// The index finds it before the tail is cut: nothing changes.
			refuse: &refusal{journal: true, offset: a.rec(t, 400).off, what: []string{parse}, serving: true},
		},
	}
}

// dmgHalfRow is the start of a row a crash tore.
var dmgHalfRow = []byte("1,Santiago,Gonz")

// dmgRecoveries are the tails a crash leaves, and the torn newest group:
// the central must cut exactly them and keep every acknowledged byte.
func dmgRecoveries(t *testing.T, a *ackedState) []dmgCase {
	all := a.all()
	cut := func(bets, journal int64) *recovery {
		r := all
		r.cutBets, r.cutJournal = bets, journal
		return &r
	}
	last := a.recs[len(a.recs)-1]
	halfRecord := slices.Clone(a.journal[last.off : last.off+32])
	rows := int64(len(dmgForgedRows))
	record, h := a.forgeGroup(dmgGroupEnd)
	unended, _ := a.forgeGroup(0)
	// rolledBack is the recovery of a torn forged group: the acked files,
	// with the forged header left in its slot (recovery cuts, it does not
	// rewrite headers; the next group overwrites it).
	rolledBack := func(bets, journal int64) *recovery {
		r := cut(bets, journal)
		f := a.files()
		f.withHeader(h)
		r.journal = f.journal
		return r
	}
	whole := &recovery{bets: slices.Concat(a.bets, dmgForgedRows), apuestas: all.apuestas + 3, finished: all.finished}
	{
		f := a.files()
		f.withHeader(h)
		whole.journal = slices.Concat(f.journal, record)
	}
	older := a.files()
	dmgFlip(older.journal, dmgSlot(a.head.gen+1)+20, 0x01)

	return []dmgCase{
		{
			name: "BetsHalfRow", damage: fmt.Sprintf("bets.csv: half a row appended (%d bytes)", len(dmgHalfRow)),
			apply:   func(f *dmgFiles) { f.bets = append(f.bets, dmgHalfRow...) },
			recover: cut(int64(len(dmgHalfRow)), 0),
		},
		{
			name: "BetsWholeRows", damage: fmt.Sprintf("bets.csv: 3 whole rows appended (%d bytes), no record", rows),
			apply:   func(f *dmgFiles) { f.bets = append(f.bets, dmgForgedRows...) },
			recover: cut(rows, 0),
		},
		{
			name: "JournalHalfRecord", damage: fmt.Sprintf("journal: half a record appended (%d bytes)", len(halfRecord)),
			apply:   func(f *dmgFiles) { f.journal = append(f.journal, halfRecord...) },
			recover: cut(0, int64(len(halfRecord))),
		},
		{
			name: "BothHalves", damage: "half a row and half a record appended",
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgHalfRow...)
				f.journal = append(f.journal, halfRecord...)
			},
			recover: cut(int64(len(dmgHalfRow)), int64(len(halfRecord))),
		},
		{
			name: "GroupWithoutHeader", damage: fmt.Sprintf("3 rows (%d bytes) and their valid group-end record appended; the group's header never written", rows),
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgForgedRows...)
				f.journal = append(f.journal, record...)
			},
			recover: cut(rows, dmgRecordSize),
		},
		{
			name: "UnendedGroup", damage: fmt.Sprintf("3 rows (%d bytes) and their valid record without the group-end mark; no header", rows),
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgForgedRows...)
				f.journal = append(f.journal, unended...)
			},
			recover: cut(rows, dmgRecordSize),
		},
		{
			name: "RecordWithoutRows", damage: "journal: a valid group-end record whose rows never reached bets.csv; no header",
			apply:   func(f *dmgFiles) { f.journal = append(f.journal, record...) },
			recover: cut(0, dmgRecordSize),
		},
		{
			name: "RowsAndTornRecord", damage: "bets.csv: 3 whole rows; journal: their group-end record torn 10 bytes short; no header",
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgForgedRows...)
				f.journal = append(f.journal, record[:dmgRecordSize-10]...)
			},
			recover: cut(rows, dmgRecordSize-10),
		},

		// The forged group whole: the central keeps it (the forgery is
		// what the writer writes), so the torn variants below are rolled
		// back for what they lack, not for a mistake of the test's.
		{
			name: "ForgedGroupWhole", damage: fmt.Sprintf("a whole next group: 3 rows, their record and its header (generation %d)", h.gen),
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgForgedRows...)
				f.journal = append(f.journal, record...)
				f.withHeader(h)
			},
			recover: whole,
		},
		{
			name: "TornGroupRecordLost", damage: "the next group's rows and header on disk, its record not",
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgForgedRows...)
				f.withHeader(h)
			},
			recover: rolledBack(rows, 0),
		},
		{
			name: "TornGroupRecordTorn", damage: "the next group's rows and header on disk, its record 24 bytes short",
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgForgedRows...)
				f.journal = append(f.journal, record[:40]...)
				f.withHeader(h)
			},
			recover: rolledBack(rows, 40),
		},
		{
			name: "TornGroupRecordZeroed", damage: "the next group's rows and header on disk, its record zeros",
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgForgedRows...)
				f.journal = append(f.journal, make([]byte, dmgRecordSize)...)
				f.withHeader(h)
			},
			recover: rolledBack(rows, dmgRecordSize),
		},
		{
			name: "TornGroupRowsLost", damage: "the next group's record and header on disk, its rows not",
			apply: func(f *dmgFiles) {
				f.journal = append(f.journal, record...)
				f.withHeader(h)
			},
			recover: rolledBack(0, dmgRecordSize),
		},
		{
			name: "TornGroupRowsTorn", damage: "the next group's record and header on disk, half its rows",
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgForgedRows[:rows/2]...)
				f.journal = append(f.journal, record...)
				f.withHeader(h)
			},
			recover: rolledBack(rows/2, dmgRecordSize),
		},
		{
			// The older slot is the one the next group overwrites: a torn
			// write there leaves the newest header whole.
			name: "HeaderOlderSlot", damage: fmt.Sprintf("journal: a bit of the older commit header (slot of generation %d)", a.head.gen+1),
			apply:   func(f *dmgFiles) { dmgFlip(f.journal, dmgSlot(a.head.gen+1)+20, 0x01) },
			recover: &recovery{bets: a.bets, journal: older.journal, apuestas: all.apuestas, finished: all.finished},
		},
	}
}

// dmgLimits are damages recovery cannot tell from a torn write, so it
// rolls back what was acknowledged (storage/header.go: the newest group is
// the one thing a crash can tear, its header may be on disk without its
// records, and a torn header leaves the one before it). In an acked
// upload the newest group is the last agencies' finished records: their
// finish, acknowledged, is forgotten, and they say it again when they
// reconnect.
//   - a bit flipped in the newest group's records;
//   - the journal cut inside the newest group, or exactly at its start;
//   - the newest commit header garbled: the one before it is the
//     committed state, and the newest group's records are a tail.
//
// And one that is not about the torn write: damage in the rows is found by
// the background verification after the tail past the committed header
// was cut (the index, which runs first, proves only the journal), so a
// rows damage refused while serving may have cut a crash's tail first.
func dmgLimits(t *testing.T, a *ackedState) []dmgCase {
	n := len(a.groups)
	newest := a.groups[n-1]
	last := a.recs[newest.last]
	first := a.recs[newest.first]
	forgotten := func(journal []byte) *recovery {
		return &recovery{
			cutJournal: a.head.after.journal - a.head.before.journal,
			bets:       a.bets, journal: journal[:a.head.before.journal],
			apuestas: a.head.before.count, finished: a.head.before.finished,
		}
	}
	garbled := a.files()
	dmgFlip(garbled.journal, dmgSlot(a.head.gen)+20, 0x01)
	size := int64(len(a.bets))
	mid := a.covering(t, size/2)
	cutIn := forgotten(a.journal)
	cutIn.cutJournal -= 10
	atStart := forgotten(a.journal)
	atStart.cutJournal = 0

	return []dmgCase{
		{
			name:    "NewestGroupRecord",
			damage:  fmt.Sprintf("journal: a bit of record %d, the last of the newest group (records %d–%d, finished records)", last.index, newest.first, newest.last),
			apply:   func(f *dmgFiles) { dmgFlip(f.journal, last.off+10, 0x01) },
			recover: forgotten(a.journal),
		},
		{
			name:    "JournalCutInNewestGroup",
			damage:  fmt.Sprintf("journal: its last 10 bytes cut (inside the newest group, records %d–%d)", newest.first, newest.last),
			apply:   func(f *dmgFiles) { f.journal = f.journal[:len(f.journal)-10] },
			recover: cutIn,
		},
		{
			name:    "JournalCutAtNewestGroup",
			damage:  fmt.Sprintf("journal cut at byte %d, the start of the newest group (record %d): its records gone, its header there", first.off, first.index),
			apply:   func(f *dmgFiles) { f.journal = f.journal[:first.off] },
			recover: atStart,
		},
		{
			name:    "NewestHeader",
			damage:  fmt.Sprintf("journal: a bit of the newest commit header (generation %d)", a.head.gen),
			apply:   func(f *dmgFiles) { dmgFlip(f.journal, dmgSlot(a.head.gen)+20, 0x01) },
			recover: forgotten(garbled.journal),
		},
		{
			name:   "BetsMiddleWithTail",
			damage: fmt.Sprintf("bets.csv: a bit of byte %d (record %d) and half a row appended (a crash's tail)", size/2, mid.index),
			apply: func(f *dmgFiles) {
				dmgFlip(f.bets, size/2, 0x01)
				f.bets = append(f.bets, dmgHalfRow...)
			},
			refuse: &refusal{offset: mid.start, what: []string{"do not match the digest"}, serving: true, cutBets: int64(len(dmgHalfRow))},
		},
	}
}

// dmgSecondCentral starts a second central on hard-linked names of a
// running central's files: it must refuse, and the first go on serving.
func dmgSecondCentral(t *testing.T, tb *caseTable, a *ackedState) {
	path1 := a.files().write(t)
	first := testutil.StartServer(t, filepath.Dir(path1), dmgServerEnv(path1))
	dir2 := t.TempDir()
	path2 := filepath.Join(dir2, "bets.csv")
	for _, suffix := range []string{"", ".journal"} {
		if err := os.Link(path1+suffix, path2+suffix); err != nil {
			t.Fatal(err)
		}
	}
	before := dmgSnapshot(t, dir2)
	env := dmgServerEnv(path2)
	env["SERVER_PORT"] = strconv.Itoa(testutil.FreePort(t))
	for k, v := range testutil.ServerTLSEnv(t) {
		env[k] = v
	}
	second := testutil.Start(t, "second", filepath.Join(testutil.Binaries(t), testutil.ServerBin), dir2, env)
	code := second.Wait(t, testutil.ExitTimeout)
	fails := testutil.Find(second.Lines(), "recuperar", "fail")
	changes, changed := dmgDiff(before, dmgSnapshot(t, dir2))
	did := fmt.Sprintf("second central: exit %d, %d recuperar fail lines", code, len(fails))
	if len(fails) == 1 {
		did += ": " + strings.ReplaceAll(fails[0].Get("error"), dir2+string(filepath.Separator), "")
	}

	// The first still serves: agency 1 uploads everything again and is
	// told its winners; nothing is stored twice.
	agency := testutil.RunClient(t, "agency-1-again", t.TempDir(), agencyEnv(a.data, 1, first.Addr,
		map[string]string{"CLI_BATCH_MAXAMOUNT": strconv.Itoa(dmgBatch)}), 3*testutil.ExitTimeout)
	checkAgency(t, agency, 1, dmgWinners[0])
	dmgStop(t, first)
	did += fmt.Sprintf("; the first served agency 1 again (exit %d) and stopped with exit 0", agency.ExitCode())
	tb.add("SecondCentral", "a second central on hard-linked names of both files while the first runs", did, strconv.FormatInt(changed, 10))

	if code != 1 || len(fails) != 1 || !strings.Contains(fails[0].Get("error"), "in use") {
		t.Errorf("second central: exit %d, fail lines %v; want exit 1 and one line saying the file is in use:\n%s", code, fails, second.Output())
	}
	if n := len(testutil.Find(second.Lines(), "escuchar", "")); n != 0 {
		t.Errorf("the second central listened")
	}
	if changes != "" {
		t.Errorf("the second central changed the files: %s", changes)
	}
	if fl := testutil.Results(first.Lines(), "fail"); len(fl) != 0 {
		t.Errorf("the first central logged %d fail lines, first: %s", len(fl), fl[0].Raw)
	}
	if !bytes.Equal(dmgRead(t, path1), a.bets) || !bytes.Equal(dmgRead(t, path1+".journal"), a.journal) {
		t.Errorf("after the resend the files differ from the acked ones")
	}
}

// dmgCheck runs `server -check` on clean and damaged copies: exit 0 and
// `verificar | result: success` on clean files, exit 1 and a `verificar |
// result: fail` line naming the damage otherwise, nothing changed.
func dmgCheck(t *testing.T, tb *caseTable, a *ackedState) {
	size := int64(len(a.bets))
	mid := a.covering(t, size/2)
	r400 := a.rec(t, 400)
	cutJ := a.rec(t, len(a.recs)/2).off
	cutB := a.rowStart(t, size/2)
	tests := []struct {
		name, damage string
		apply        func(f *dmgFiles)
		fail         bool
		file         string // "bets" or "journal"
		offset       int64
		what         string
	}{
		{"Clean", "none", func(*dmgFiles) {}, false, "", 0, ""},
		{"BetsMiddle", fmt.Sprintf("bets.csv: a bit of byte %d", size/2), func(f *dmgFiles) { dmgFlip(f.bets, size/2, 1) }, true, "bets", mid.start, "do not match the digest"},
		{"Journal400", "journal: a bit of record 400", func(f *dmgFiles) { dmgFlip(f.journal, r400.off+12, 1) }, true, "journal", r400.off, "does not parse"},
		{"JournalCut", fmt.Sprintf("journal cut at byte %d (a record boundary)", cutJ), func(f *dmgFiles) { f.journal = f.journal[:cutJ] }, true, "journal", cutJ, "cut short"},
		{"BetsCut", fmt.Sprintf("bets.csv cut at byte %d (a row boundary)", cutB), func(f *dmgFiles) { f.bets = f.bets[:cutB] }, true, "bets", cutB, "cut short"},
		{"NoJournal", "journal deleted", func(f *dmgFiles) { f.noJournal = true }, true, "", 0, "no journal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := a.files()
			tt.apply(f)
			path := f.write(t)
			before := dmgSnapshot(t, filepath.Dir(path))
			code, lines, out := runServerFlag(t, path, "-check")
			changes, changed := dmgDiff(before, dmgSnapshot(t, filepath.Dir(path)))
			ls := testutil.Find(lines, "verificar", "")
			did := fmt.Sprintf("-check: exit %d", code)
			if len(ls) == 1 {
				did += fmt.Sprintf(", verificar %s", ls[0].Result)
				if ls[0].Has("offset") {
					did += fmt.Sprintf(" (file %s, offset %s)", filepath.Base(ls[0].Get("file")), ls[0].Get("offset"))
				}
			}
			tb.add("Check/"+tt.name, tt.damage, did, strconv.FormatInt(changed, 10))
			if len(ls) != 1 {
				t.Fatalf("%d verificar lines, want 1:\n%s", len(ls), out)
			}
			l := ls[0]
			switch {
			case !tt.fail:
				if code != 0 || l.Result != "success" || l.Get("tail_bets_bytes") != "0" || l.Get("tail_journal_bytes") != "0" ||
					l.Get("apuestas") != strconv.FormatInt(a.head.after.count, 10) {
					t.Errorf("exit %d, %s; want exit 0, success, no tail, every bet", code, l.Raw)
				}
			default:
				if code != 1 || l.Result != "fail" || !strings.Contains(l.Get("error"), tt.what) {
					t.Errorf("exit %d, %s; want exit 1, fail, error saying %q", code, l.Raw, tt.what)
				}
				want := map[string]string{"bets": path, "journal": path + ".journal"}[tt.file]
				if tt.file != "" && (l.Get("file") != want || l.Get("offset") != strconv.FormatInt(tt.offset, 10)) {
					t.Errorf("%s; want file %s, offset %d", l.Raw, want, tt.offset)
				}
			}
			if changes != "" {
				t.Errorf("-check changed the directory: %s", changes)
			}
		})
	}
}

// dmgRepair runs `server -repair` on damaged copies. The cut files are
// first refused untouched. Repair keeps the longest verified prefix (whole
// groups from the start): the removed bets bytes go to
// bets.csv.broken-<time>, the journal as it was is copied whole to
// bets.csv.journal.broken-<time>, and the kept journal is the original's
// records up to the prefix under rewritten headers (the kept generation's
// slot quiescent, the other zeros). Then the central starts on the
// repaired files, and -check verifies them whole.
func dmgRepair(t *testing.T, tb *caseTable, a *ackedState) {
	size := int64(len(a.bets))
	mid := a.covering(t, size/2)
	midRec := a.rec(t, len(a.recs)/2)
	cutB := a.rowStart(t, size/2)
	// A bets file cut at cutB keeps the groups before the first record
	// that covers bytes past the cut.
	pastCut := slices.IndexFunc(a.recs, func(r dmgRecord) bool { return r.end > cutB })
	tests := []struct {
		name, damage string
		apply        func(f *dmgFiles)
		refuse       *refusal // the central's refusal before the repair; nil: not asserted here
		keep         int      // the last group kept
	}{
		{"BetsMiddle", fmt.Sprintf("bets.csv: a bit of byte %d (record %d)", size/2, mid.index),
			func(f *dmgFiles) { dmgFlip(f.bets, size/2, 1) }, nil, a.groupOf[mid.index] - 1},
		{"Journal400", "journal: a bit of record 400", func(f *dmgFiles) { dmgFlip(f.journal, a.rec(t, 400).off+12, 1) }, nil, a.groupBefore(400)},
		{"JournalCutAfterBase", "journal cut just after the base record",
			func(f *dmgFiles) { f.journal = f.journal[:dmgRecordsStart+dmgRecordSize] },
			&refusal{journal: true, offset: dmgRecordsStart + dmgRecordSize, what: []string{"cut short"}}, 0},
		{"JournalCutAtRecord", fmt.Sprintf("journal cut at record %d", midRec.index),
			func(f *dmgFiles) { f.journal = f.journal[:midRec.off] },
			&refusal{journal: true, offset: midRec.off, what: []string{"cut short"}}, a.groupBefore(midRec.index)},
		{"JournalCutMidRecord", fmt.Sprintf("journal cut 30 bytes into record %d", midRec.index),
			func(f *dmgFiles) { f.journal = f.journal[:midRec.off+30] },
			&refusal{journal: true, offset: midRec.off + 30, what: []string{"cut short"}}, a.groupBefore(midRec.index)},
		{"JournalZeroed", fmt.Sprintf("journal cut at record %d and zero-filled back to its length", midRec.index),
			func(f *dmgFiles) { clear(f.journal[midRec.off:]) },
			&refusal{journal: true, offset: a.recs[a.groups[len(a.groups)-2].last].off, what: []string{"does not parse", "zero-filled"}},
			a.groupBefore(midRec.index)},
		{"JournalCutInHeaders", fmt.Sprintf("journal cut at byte %d, inside its header blocks: nothing of it verifies", dmgSlot(1)+100),
			func(f *dmgFiles) { f.journal = f.journal[:dmgSlot(1)+100] },
			&refusal{journal: true, offset: int64(dmgSlot(1) + 100), what: []string{"cut short"}}, 0},
		{"BetsCutAtRow", fmt.Sprintf("bets.csv cut at byte %d (a row boundary)", cutB),
			func(f *dmgFiles) { f.bets = f.bets[:cutB] },
			&refusal{offset: cutB, what: []string{"cut short"}}, a.groupBefore(pastCut)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := a.files()
			tt.apply(f)
			path := f.write(t)
			if tt.refuse != nil {
				expectRefusal(t, tb, "Repair/"+tt.name+" before", tt.damage, path, *tt.refuse)
			}
			keep := a.stateAfter(tt.keep)
			wantJournal := a.repaired(f.journal, tt.keep)
			code, lines, out := runServerFlag(t, path, "-repair")
			l, ok := testutil.FindOne(lines, "reparar", "success")
			brokenB, _ := filepath.Glob(path + ".broken-*")
			brokenJ, _ := filepath.Glob(path + ".journal.broken-*")
			movedB, movedJ := l.Get("moved_bets_bytes"), l.Get("moved_journal_bytes")
			tb.add("Repair/"+tt.name, tt.damage, fmt.Sprintf("-repair: exit %d, kept bets %s and journal %s bytes (groups 0–%d), moved %s bets bytes aside, journal copied whole (moved_journal_bytes %s)",
				code, l.Get("verified_bets_bytes"), l.Get("verified_journal_bytes"), tt.keep, movedB, movedJ), movedB+"+"+movedJ)
			if code != 0 || !ok {
				t.Fatalf("-repair exited %d without one reparar success line:\n%s", code, out)
			}
			wantMovedJ := int64(len(f.journal)) - keep.journal
			if wantMovedJ < 0 {
				wantMovedJ = int64(len(f.journal)) // cut inside its blocks: none of it is kept
			}
			if movedB != strconv.FormatInt(int64(len(f.bets))-keep.bets, 10) || movedJ != strconv.FormatInt(wantMovedJ, 10) {
				t.Errorf("%s; want moved_bets_bytes %d, moved_journal_bytes %d (groups 0–%d kept)",
					l.Raw, int64(len(f.bets))-keep.bets, wantMovedJ, tt.keep)
			}
			if len(brokenB) != 1 || len(brokenJ) != 1 || l.Get("broken_bets") != brokenB[0] || l.Get("broken_journal") != brokenJ[0] {
				t.Fatalf("broken files %q and %q, want one each, named in %s", brokenB, brokenJ, l.Raw)
			}
			if got := dmgRead(t, brokenB[0]); !bytes.Equal(got, f.bets[keep.bets:]) {
				t.Errorf("%s holds %d bytes, want the %d removed", brokenB[0], len(got), len(f.bets[keep.bets:]))
			}
			if got := dmgRead(t, brokenJ[0]); !bytes.Equal(got, f.journal) {
				t.Errorf("%s holds %d bytes, want the damaged journal's %d, whole", brokenJ[0], len(got), len(f.journal))
			}
			if got := dmgRead(t, path+".journal"); !bytes.Equal(got, wantJournal) {
				t.Errorf("the repaired journal: %d bytes, want %d: the records up to group %d under a quiescent header (first difference at %d)",
					len(got), len(wantJournal), tt.keep, dmgFirstDiff(got, wantJournal))
			}
			expectRecovery(t, tb, "Repair/"+tt.name+" then start", "(the repaired files)", path, recovery{
				bets: a.bets[:keep.bets], journal: wantJournal, apuestas: keep.count, finished: keep.finished,
			})
		})
	}
}

// dmgStrayQuote is a course-format row with a stray quote, as the
// course's Python writes it (csv.QUOTE_MINIMAL leaves O"Brien alone).
const dmgStrayQuote = "1,Conan,O\"Brien,123,1990-01-01,7574\r\n"

// dmgAdopt gives the central a journal-less course-format file whose last
// row holds a stray quote: it refuses it, -check says why, and -repair
// adopts every complete row under a new journal (its blocks and one base
// record whose header covers them).
func dmgAdopt(t *testing.T, tb *caseTable, a *ackedState) {
	f := &dmgFiles{bets: slices.Concat(a.bets, []byte(dmgStrayQuote)), noJournal: true}
	path := f.write(t)
	rows := int64(bytes.Count(f.bets, []byte("\n")))

	code, lines, out := runServerFlag(t, path, "-check")
	l, ok := testutil.FindOne(lines, "verificar", "fail")
	tb.add("Adopt/check", "journal-less course file, last row "+strings.TrimSpace(dmgStrayQuote), fmt.Sprintf("-check: exit %d, verificar fail: %s", code, l.Get("error")), "0")
	if code != 1 || !ok || !strings.Contains(l.Get("error"), "no journal") {
		t.Errorf("-check on a journal-less file: exit %d:\n%s", code, out)
	}

	code, lines, out = runServerFlag(t, path, "-repair")
	l, ok = testutil.FindOne(lines, "reparar", "success")
	journal, _ := os.ReadFile(path + ".journal")
	broken, _ := filepath.Glob(path + "*.broken-*")
	tb.add("Adopt/repair", "journal-less course file, last row "+strings.TrimSpace(dmgStrayQuote),
		fmt.Sprintf("-repair: exit %d, adoptadas %s of %d rows, new journal %d bytes, %d .broken files", code, l.Get("adoptadas"), rows, len(journal), len(broken)),
		fmt.Sprintf("+%d (journal)", len(journal)))
	if code != 0 || !ok || l.Get("adoptadas") != strconv.FormatInt(rows, 10) {
		t.Fatalf("-repair: exit %d, want 0 adopting %d rows:\n%s", code, rows, out)
	}
	if len(broken) != 0 || len(journal) != dmgRecordsStart+dmgRecordSize || !bytes.HasPrefix(journal, []byte(dmgMagic)) {
		t.Fatalf("adoption moved %q aside and wrote a %d-byte journal; want nothing moved and %s, its blocks and one base record (%d bytes)",
			broken, len(journal), dmgMagic, dmgRecordsStart+dmgRecordSize)
	}
	if h, ok := parseDmgHeader(journal, dmgSlot(0)); !ok || h.gen != 0 || h.after.journal != int64(len(journal)) ||
		h.after.bets != int64(len(f.bets)) || h.after.count != rows {
		t.Errorf("the adopted journal's header %+v (checks out: %v); want generation 0 after %d journal bytes, %d bets bytes, %d bets",
			h, ok, len(journal), len(f.bets), rows)
	}
	if !bytes.Equal(dmgRead(t, path), f.bets) {
		t.Errorf("adoption changed bets.csv")
	}
	expectRecovery(t, tb, "Adopt/start", "(the adopted file)", path, recovery{bets: f.bets, journal: journal, apuestas: rows})
}

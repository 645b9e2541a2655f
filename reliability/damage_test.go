package reliability

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"

	"lottery/gendata"
	"lottery/internal/testutil"
)

// The damage suite's upload and the parts of the file formats it needs
// (storage/journal.go, storage/verify.go): the test reads them as an
// operator with a hex editor would, black-box.
const (
	dmgAgencies  = 3
	dmgPerAgency = 60_000 // 180 000 rows, about 8 MB: more than dmgMaxTail
	dmgBatch     = 100    // 1 800 batch records, groups of a few each

	dmgMagic      = "LOTJRNL2"
	dmgRecordSize = 64
	dmgGroupEnd   = 1 // flags bit 0: the last record of its group commit
	dmgKindBatch  = 1
	dmgKindDone   = 2
	// dmgMaxTail mirrors storage's maxTailBytes (maxGroupBytes 4 MiB plus
	// 1 MiB): the most bytes past the last committed record recovery cuts.
	dmgMaxTail = 4<<20 + 1<<20
)

// dmgWinners are the winners per agency of the generated files.
var dmgWinners = []int{2, 0, 3}

// dmgRecord is one journal record as the test decodes it.
type dmgRecord struct {
	index      int
	off        int64 // offset in the journal
	kind       byte
	flags      byte
	agency     uint32
	seq        uint64
	start, end int64 // bytes of the bets file it covers
	count      uint32
}

// dmgGroup is a group commit: records first..last (indexes).
type dmgGroup struct{ first, last int }

// ackedState is what a finished upload left: every batch in it was
// acknowledged (every agency exited 0).
type ackedState struct {
	data          dataset // the agencies' files
	bets, journal []byte
	recs          []dmgRecord
	groups        []dmgGroup
	groupOf       []int // record index → group index
}

// dmgFiles are the two files of one case, damaged in memory then written.
type dmgFiles struct {
	bets, journal []byte
	noJournal     bool
}

func (a *ackedState) files() *dmgFiles {
	return &dmgFiles{bets: slices.Clone(a.bets), journal: slices.Clone(a.journal)}
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
// offset recovery names for a change there is that record's start (the
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

// keepBefore returns what recovery keeps of a journal cut before record
// k: the journal and bets lengths at the end of the last whole group.
func (a *ackedState) keepBefore(k int) (journal, bets int64) {
	journal = int64(len(dmgMagic))
	for _, g := range a.groups {
		if g.last >= k {
			break
		}
		journal, bets = a.recs[g.last].off+dmgRecordSize, a.recs[g.last].end
	}
	return journal, bets
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

// rowStart returns the start of the first row at or after pos.
func (a *ackedState) rowStart(t *testing.T, pos int64) int64 {
	t.Helper()
	i := bytes.IndexByte(a.bets[pos:], '\n')
	if i < 0 {
		t.Fatalf("no row starts after byte %d", pos)
	}
	return pos + int64(i) + 1
}

// parseJournal decodes a version 2 journal (storage/journal.go).
func parseJournal(t *testing.T, j []byte) []dmgRecord {
	t.Helper()
	if !bytes.HasPrefix(j, []byte(dmgMagic)) || (len(j)-len(dmgMagic))%dmgRecordSize != 0 {
		t.Fatalf("the journal (%d bytes) is not %s and whole records", len(j), dmgMagic)
	}
	var recs []dmgRecord
	var prevEnd int64
	for off := len(dmgMagic); off < len(j); off += dmgRecordSize {
		b := j[off : off+dmgRecordSize]
		r := dmgRecord{
			index: len(recs), off: int64(off), kind: b[0], flags: b[1],
			agency: binary.BigEndian.Uint32(b[4:8]), seq: binary.BigEndian.Uint64(b[8:16]),
			start: prevEnd, end: int64(binary.BigEndian.Uint64(b[16:24])), count: binary.BigEndian.Uint32(b[24:28]),
		}
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
	binary.BigEndian.PutUint32(rec[60:], crc32.Checksum(rec[:60], crc32.MakeTable(crc32.Castagnoli)))
}

// dmgForgeRecord encodes a valid record chained after the journal's last
// one, as the central's writer would (storage/journal.go).
func dmgForgeRecord(j []byte, kind, flags byte, agency uint32, seq uint64, end int64, count uint32, rows []byte) []byte {
	prev := j[len(j)-dmgRecordSize+44 : len(j)-4]
	b := []byte{kind, flags, 0, 0}
	b = binary.BigEndian.AppendUint32(b, agency)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	b = binary.BigEndian.AppendUint32(b, count)
	sum := sha256.Sum256(rows)
	b = append(b, sum[:16]...)
	h := sha256.New()
	h.Write(prev)
	h.Write(b)
	b = append(b, h.Sum(nil)[:16]...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// uploadAcked runs the built central and three agencies to the end (every
// agency told its winners, exit 0), stops the central with SIGTERM and
// returns its files: the acknowledged state every case damages a copy of.
func uploadAcked(t *testing.T, dataDir string) *ackedState {
	t.Helper()
	d := dataset{dir: dataDir, agencies: dmgAgencies}
	for a := 1; a <= dmgAgencies; a++ {
		if _, err := gendata.WriteFile(d.dir, a, dmgPerAgency, dmgWinners[a-1], 2025, true); err != nil {
			t.Fatal(err)
		}
	}
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
	var err error
	if s.bets, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if s.journal, err = os.ReadFile(path + ".journal"); err != nil {
		t.Fatal(err)
	}
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
	t.Logf("acked state: bets.csv %d bytes, journal %d bytes, %d records in %d group commits",
		len(s.bets), len(s.journal), len(s.recs), len(s.groups))
	return s
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
	if err := os.WriteFile(path, f.bets, 0o644); err != nil {
		t.Fatal(err)
	}
	if !f.noJournal {
		if err := os.WriteFile(path+".journal", f.journal, 0o644); err != nil {
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

// refusal is the expected outcome "the central refuses to start": the
// damage it names.
type refusal struct {
	journal bool   // the journal is the file named, else the bets file
	offset  int64  // the offset named
	what    string // a part of the error
}

// recovery is the expected outcome "the central starts": what recovery
// cut, and the files it leaves.
type recovery struct {
	cutBets, cutJournal int64
	bets, journal       []byte
	apuestas            int64
}

// dmgTable collects one row per case for the closing note.
type dmgTable struct{ rows [][4]string }

func (tb *dmgTable) add(name, damage, did string, changed string) {
	tb.rows = append(tb.rows, [4]string{name, damage, did, changed})
}

func (tb *dmgTable) log(t *testing.T) {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "case\tdamage\twhat the central did\tbytes changed")
	for _, r := range tb.rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3])
	}
	w.Flush()
	t.Logf("damage table (%d cases):\n%s", len(tb.rows), sb.String())
}

// expectRefusal starts the built central on path and checks that it
// refuses: exit 1, one `recuperar | result: fail` line naming the damage,
// and no byte of the directory changed.
func expectRefusal(t *testing.T, tb *dmgTable, name, damage, path string, want refusal) {
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
	changes, changed := dmgDiff(before, dmgSnapshot(t, dir))
	did := fmt.Sprintf("exit %d", code)
	if len(fails) > 0 {
		did = fmt.Sprintf("refused (exit %d): file %s, offset %s", code, filepath.Base(fails[0].Get("file")), fails[0].Get("offset"))
	} else if l, ok := testutil.FindOne(lines, "recuperar", "success"); ok {
		did = fmt.Sprintf("STARTED (exit %d): %s", code, dmgRecoveryText(l))
	}
	if changes != "" {
		did += "; " + changes
	}
	tb.add(name, damage, did, strconv.FormatInt(changed, 10))

	wantFile := path
	if want.journal {
		wantFile = path + ".journal"
	}
	if code != 1 {
		t.Errorf("exit %d, want 1 (refuse to start):\n%s", code, tail(p.Output(), 10))
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
	if !strings.Contains(l.Get("error"), want.what) {
		t.Errorf("error %q does not say %q", l.Get("error"), want.what)
	}
	if !l.Has("hint") {
		t.Errorf("no hint: %s", l.Raw)
	}
	if n := len(testutil.Find(lines, "escuchar", "")); n != 0 {
		t.Errorf("the central listened (%d escuchar lines) on damaged files", n)
	}
	if changes != "" {
		t.Errorf("the refusing central changed the directory (%d bytes): %s", changed, changes)
	}
}

// expectRecovery starts the built central on path, stops it with SIGTERM
// and checks what recovery cut and the files it left.
func expectRecovery(t *testing.T, tb *dmgTable, name, damage, path string, want recovery) {
	t.Helper()
	betsBefore, journalBefore := dmgRead(t, path), dmgRead(t, path+".journal")
	p := testutil.StartServer(t, filepath.Dir(path), dmgServerEnv(path))
	dmgStop(t, p)
	betsAfter, journalAfter := dmgRead(t, path), dmgRead(t, path+".journal")
	l, ok := testutil.FindOne(p.Lines(), "recuperar", "success")
	changed := int64(len(betsBefore)-len(betsAfter)) + int64(len(journalBefore)-len(journalAfter))
	tb.add(name, damage, "recovered (exit 0): "+dmgRecoveryText(l), strconv.FormatInt(changed, 10))
	if !ok {
		t.Fatalf("no single `recuperar | result: success` line:\n%s", tail(p.Output(), 10))
	}
	for _, c := range []struct {
		key  string
		want int64
	}{{"bytes_descartados", want.cutBets}, {"journal_bytes_descartados", want.cutJournal}, {"apuestas", want.apuestas}} {
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
// central on each copy. Every case ends in one of two outcomes, asserted
// exactly: the central refuses to start (exit 1, one `recuperar | result:
// fail` line naming the file and offset of the damage, no byte of the
// directory changed), or it recovers (exit 0 after SIGTERM) leaving exactly
// the expected bytes. The Limits cases are damages recovery cannot tell
// from an unsynced tail, so it cuts acknowledged data: they are asserted as
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
	tb := &dmgTable{}
	defer tb.log(t)

	t.Run("Control", func(t *testing.T) {
		expectRecovery(t, tb, "control", "none (the acked files as they are)", a.files().write(t),
			recovery{bets: a.bets, journal: a.journal, apuestas: a.betsUpTo(int64(len(a.journal)))})
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
}

// dmgRefusals are the damages the central must refuse to start on.
func dmgRefusals(t *testing.T, a *ackedState) []dmgCase {
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
			refuse: &refusal{journal: true, offset: r.off, what: what},
		}
	}
	bflip := func(name, where string, pos int64) dmgCase {
		r := a.covering(t, pos)
		return dmgCase{
			name:   name,
			damage: fmt.Sprintf("bets.csv: bit 0x01 of byte %d (%s; record %d covers %d–%d)", pos, where, r.index, r.start, r.end),
			apply:  func(f *dmgFiles) { dmgFlip(f.bets, pos, 0x01) },
			refuse: &refusal{offset: r.start, what: "do not match the digest"},
		}
	}
	const parse, chain = "does not parse", "does not chain"
	size := int64(len(a.bets))

	// The last row's record must not be in the last group: the agencies
	// finish after their last ack, so the last group holds only finished
	// records, covering no bytes.
	lastRow := a.covering(t, size-3)
	if a.groupOf[lastRow.index] == len(a.groups)-1 {
		t.Fatalf("the last group holds the last batch (record %d): the setup does not match the protocol", lastRow.index)
	}

	insertAt := a.rowStart(t, size/3)
	editAt := a.rowStart(t, 2*size/3)
	deleteAt := a.rowStart(t, size/4)
	deleteEnd := a.rowStart(t, deleteAt)
	inserted := []byte("2,Conan,Doyle,30000000,1990-01-01,1234\r\n")

	cutAt := 200 // a record boundary well before the end
	keepJ, keepB := a.keepBefore(cutAt)
	if size-keepB <= dmgMaxTail {
		t.Fatalf("cutting the journal at record %d leaves %d bytes past it, not more than %d: make the upload bigger", cutAt, size-keepB, dmgMaxTail)
	}
	cutOff := a.rec(t, cutAt).off

	return []dmgCase{
		jflip("JournalBaseRecord", 0, 5, 0x01, false, parse),
		jflip("JournalRecord400", 400, 12, 0x01, false, parse),
		jflip("JournalDigest", 401, 30, 0x80, false, parse),
		jflip("JournalChain", 402, 50, 0x04, false, parse),
		jflip("JournalCRC", 403, 62, 0x01, false, parse),
		jflip("JournalFlagsGroupEnd", 404, 1, dmgGroupEnd, false, parse),
		jflip("JournalDigestFixedCRC", 600, 35, 0x01, true, chain),
		jflip("JournalFlagsGroupEndFixedCRC", 700, 1, dmgGroupEnd, true, chain),
		jflip("JournalFlagsReservedFixedCRC", 800, 1, 0x02, true, parse),
		jflip("JournalEndFixedCRC", 1000, 23, 0x01, true, chain),
		jflip("JournalChainFixedCRC", 1200, 44, 0x01, true, chain),

		bflip("BetsFirstRow", "first row", 2),
		bflip("BetsMiddle", "middle", size/2),
		bflip("BetsLastRow", "the last committed row", size-3),

		{
			name:   "BetsRowInserted",
			damage: fmt.Sprintf("bets.csv: a row inserted at byte %d", insertAt),
			apply: func(f *dmgFiles) {
				f.bets = slices.Concat(a.bets[:insertAt], inserted, a.bets[insertAt:])
			},
			refuse: &refusal{offset: a.covering(t, insertAt).start, what: "do not match the digest"},
		},
		{
			name:   "BetsRowEdited",
			damage: fmt.Sprintf("bets.csv: the agency digit of the row at byte %d changed (%c→9)", editAt, a.bets[editAt]),
			apply:  func(f *dmgFiles) { f.bets[editAt] = '9' },
			refuse: &refusal{offset: a.covering(t, editAt).start, what: "do not match the digest"},
		},
		{
			name:   "BetsRowDeleted",
			damage: fmt.Sprintf("bets.csv: the row at bytes %d–%d deleted", deleteAt, deleteEnd),
			apply: func(f *dmgFiles) {
				f.bets = slices.Concat(a.bets[:deleteAt], a.bets[deleteEnd:])
			},
			refuse: &refusal{offset: a.covering(t, deleteAt).start, what: "do not match the digest"},
		},

		{
			name:   "JournalTruncatedAtRecord",
			damage: fmt.Sprintf("journal cut at record %d (offset %d of %d; the last whole group ends at %d): %d bets bytes past it", cutAt, cutOff, len(a.journal), keepJ, size-keepB),
			apply:  func(f *dmgFiles) { f.journal = f.journal[:cutOff] },
			refuse: &refusal{journal: true, offset: keepJ, what: "more than one group commit writes"},
		},
		{
			name:   "JournalTruncatedMidRecord",
			damage: fmt.Sprintf("journal cut 30 bytes into record %d (offset %d)", cutAt, cutOff+30),
			apply:  func(f *dmgFiles) { f.journal = f.journal[:cutOff+30] },
			refuse: &refusal{journal: true, offset: keepJ, what: "more than one group commit writes"},
		},
		{
			name:   "JournalMissing",
			damage: fmt.Sprintf("journal deleted next to %d bytes of bets", size),
			apply:  func(f *dmgFiles) { f.noJournal = true },
			refuse: &refusal{journal: true, offset: 0, what: "no complete journal"},
		},
	}
}

// dmgTornRows are whole rows of a batch whose record never reached the
// journal.
var dmgTornRows = []byte("1,Santiago,González,00000001,1990-01-01,1\r\n1,Lucía,Pérez,00000002,1991-02-02,2\r\n1,Tomás,Díaz,00000003,1992-03-03,3\r\n")

// dmgRecoveries are the tails a crash leaves: the central must cut exactly
// them and keep every acknowledged byte.
func dmgRecoveries(t *testing.T, a *ackedState) []dmgCase {
	size := int64(len(a.bets))
	all := recovery{bets: a.bets, journal: a.journal, apuestas: a.betsUpTo(int64(len(a.journal)))}
	cut := func(bets, journal int64) *recovery {
		r := all
		r.cutBets, r.cutJournal = bets, journal
		return &r
	}
	halfRow := []byte("1,Santiago,Gonz")
	last := a.recs[len(a.recs)-1]
	halfRecord := slices.Clone(a.journal[last.off : last.off+32])
	// The next batch of agency 1 as its writer would have recorded it.
	seq1 := uint64(0)
	for _, r := range a.recs {
		if r.kind == dmgKindBatch && r.agency == 1 {
			seq1 = r.seq
		}
	}
	nextRecord := func(flags byte) []byte {
		return dmgForgeRecord(a.journal, dmgKindBatch, flags, 1, seq1+1, size+int64(len(dmgTornRows)), 3, dmgTornRows)
	}
	return []dmgCase{
		{
			name: "BetsHalfRow", damage: fmt.Sprintf("bets.csv: half a row appended (%d bytes)", len(halfRow)),
			apply:   func(f *dmgFiles) { f.bets = append(f.bets, halfRow...) },
			recover: cut(int64(len(halfRow)), 0),
		},
		{
			name: "JournalHalfRecord", damage: fmt.Sprintf("journal: half a record appended (%d bytes)", len(halfRecord)),
			apply:   func(f *dmgFiles) { f.journal = append(f.journal, halfRecord...) },
			recover: cut(0, int64(len(halfRecord))),
		},
		{
			name: "BothHalves", damage: "half a row and half a record appended",
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, halfRow...)
				f.journal = append(f.journal, halfRecord...)
			},
			recover: cut(int64(len(halfRow)), int64(len(halfRecord))),
		},
		{
			name: "UnendedGroup", damage: fmt.Sprintf("bets.csv: 3 rows (%d bytes) and their valid record without the group-end mark (a group write torn after its first record)", len(dmgTornRows)),
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgTornRows...)
				f.journal = append(f.journal, nextRecord(0)...)
			},
			recover: cut(int64(len(dmgTornRows)), dmgRecordSize),
		},
		{
			name: "RecordWithoutRows", damage: "journal: a valid group-end record whose rows never reached bets.csv",
			apply:   func(f *dmgFiles) { f.journal = append(f.journal, nextRecord(dmgGroupEnd)...) },
			recover: cut(0, dmgRecordSize),
		},
		{
			name: "RowsAndTornRecord", damage: "bets.csv: 3 whole rows; journal: their group-end record torn 10 bytes short",
			apply: func(f *dmgFiles) {
				f.bets = append(f.bets, dmgTornRows...)
				f.journal = append(f.journal, nextRecord(dmgGroupEnd)[:dmgRecordSize-10]...)
			},
			recover: cut(int64(len(dmgTornRows)), dmgRecordSize-10),
		},
		{
			name: "AckedPrefix", damage: "none: the files as they were right after the last batch's group commit (before the finished records)",
			apply:   func(f *dmgFiles) { f.journal = f.journal[:a.prefixEnd(t)] },
			recover: &recovery{bets: a.bets, journal: a.journal[:a.prefixEnd(t)], apuestas: all.apuestas},
		},
	}
}

// lastBatchGroup returns the group commit that holds the last batch.
func (a *ackedState) lastBatchGroup(t *testing.T) dmgGroup {
	t.Helper()
	return a.groups[a.groupOf[a.covering(t, int64(len(a.bets))-1).index]]
}

// prefixEnd is the journal's length right after the last batch's group
// commit: a state the files were really in, every batch in it acked.
func (a *ackedState) prefixEnd(t *testing.T) int64 {
	t.Helper()
	return a.recs[a.lastBatchGroup(t).last].off + dmgRecordSize
}

// dmgLimits are damages recovery cannot tell from an unsynced tail, so the
// design cuts them although they were acknowledged (storage/verify.go: a
// torn last group write may hold garbled records followed by valid ones;
// only a valid group end followed by more proves damage, and up to
// maxTailBytes of rows past the journal's last group are a tail):
//   - a garbled last record (here a finished record: the agency's finish,
//     acknowledged, is forgotten);
//   - a garbled group-end record of the second-to-last group: the last two
//     groups merge into one "tail" and both are cut;
//   - in state P (the files right after the last batch's group commit,
//     before any finished record) a flipped bit in the last rows: that
//     group is cut, and a garbled group end before it cuts two groups;
//   - a journal cut short with at most maxTailBytes of rows past it.
func dmgLimits(t *testing.T, a *ackedState) []dmgCase {
	size := int64(len(a.bets))
	n := len(a.groups)
	lastG, prevG := a.groups[n-1], a.groups[n-2]
	last := a.recs[len(a.recs)-1]

	// The prefix state P ends with the group of the last batch.
	pEnd := a.prefixEnd(t)
	g := a.lastBatchGroup(t)
	gi := a.groupOf[g.last]
	gStart := a.recs[g.first]
	pg := a.groups[gi-1]

	k := len(a.recs) - 150 // a record boundary near the end
	keepJ, keepB := a.keepBefore(k)
	if size-keepB > dmgMaxTail {
		t.Fatalf("cutting the journal at record %d leaves %d bytes past it, more than %d", k, size-keepB, dmgMaxTail)
	}
	kOff := a.rec(t, k).off

	return []dmgCase{
		{
			name:   "JournalLastRecord",
			damage: fmt.Sprintf("journal: a bit of the last record %d (a finished record; the last group is records %d–%d)", last.index, lastG.first, lastG.last),
			apply:  func(f *dmgFiles) { dmgFlip(f.journal, last.off+10, 0x01) },
			recover: &recovery{
				cutJournal: int64(len(a.journal)) - a.recs[lastG.first].off,
				bets:       a.bets, journal: a.journal[:a.recs[lastG.first].off], apuestas: a.betsUpTo(int64(len(a.journal))),
			},
		},
		{
			name: "JournalSecondToLastGroupEnd",
			damage: fmt.Sprintf("journal: a bit of record %d, the group-end record of the second-to-last group (records %d–%d; the last is %d–%d)",
				prevG.last, prevG.first, prevG.last, lastG.first, lastG.last),
			// The last group's records carry a group number two past the
			// last whole group: proof that the flip is damage.
			apply:  func(f *dmgFiles) { dmgFlip(f.journal, a.recs[prevG.last].off+10, 0x01) },
			refuse: &refusal{journal: true, offset: a.recs[prevG.last].off, what: "at least two groups after"},
		},
		{
			name: "PrefixLastRow",
			damage: fmt.Sprintf("state P (journal cut after the last batch's group, records %d–%d, all acked); bets.csv: a bit of the last row (byte %d)",
				g.first, g.last, size-3),
			apply: func(f *dmgFiles) {
				f.journal = f.journal[:pEnd]
				dmgFlip(f.bets, size-3, 0x01)
			},
			recover: &recovery{
				cutBets: size - gStart.start, cutJournal: pEnd - gStart.off,
				bets: a.bets[:gStart.start], journal: a.journal[:gStart.off], apuestas: a.betsUpTo(gStart.off),
			},
		},
		{
			name: "PrefixSecondToLastGroupEnd",
			damage: fmt.Sprintf("state P; journal: a bit of record %d, the group-end record of the group before the last (records %d–%d)",
				pg.last, pg.first, pg.last),
			apply: func(f *dmgFiles) {
				f.journal = f.journal[:pEnd]
				dmgFlip(f.journal, a.recs[pg.last].off+10, 0x01)
			},
			refuse: &refusal{journal: true, offset: a.recs[pg.last].off, what: "at least two groups after"},
		},
		{
			name: "JournalTruncatedSmall",
			damage: fmt.Sprintf("journal cut at record %d of %d (offset %d): %d bets bytes past the last whole group, under the %d-byte tail limit",
				k, len(a.recs), kOff, size-keepB, dmgMaxTail),
			apply: func(f *dmgFiles) { f.journal = f.journal[:kOff] },
			recover: &recovery{
				cutBets: size - keepB, cutJournal: kOff - keepJ,
				bets: a.bets[:keepB], journal: a.journal[:keepJ], apuestas: a.betsUpTo(keepJ),
			},
		},
	}
}

// dmgSecondCentral starts a second central on hard-linked names of a
// running central's files: it must refuse, and the first go on serving.
func dmgSecondCentral(t *testing.T, tb *dmgTable, a *ackedState) {
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

// dmgCheck runs `server -check` on clean and damaged copies.
func dmgCheck(t *testing.T, tb *dmgTable, a *ackedState) {
	size := int64(len(a.bets))
	mid := a.covering(t, size/2)
	r400 := a.rec(t, 400)
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
					l.Get("apuestas") != strconv.FormatInt(a.betsUpTo(int64(len(a.journal))), 10) {
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

// dmgRepair runs `server -repair` on damaged copies: it keeps the longest
// verified prefix, moves exactly the rest aside, and the central starts.
func dmgRepair(t *testing.T, tb *dmgTable, a *ackedState) {
	size := int64(len(a.bets))
	mid := a.covering(t, size/2)
	midGroup := a.recs[a.groups[a.groupOf[mid.index]].first]
	r400 := a.rec(t, 400)
	keepJ400, keepB400 := a.keepBefore(400)
	tests := []struct {
		name, damage string
		apply        func(f *dmgFiles)
		keepB, keepJ int64
	}{
		{"BetsMiddle", fmt.Sprintf("bets.csv: a bit of byte %d (record %d, group from record %d)", size/2, mid.index, midGroup.index),
			func(f *dmgFiles) { dmgFlip(f.bets, size/2, 1) }, midGroup.start, midGroup.off},
		{"Journal400", "journal: a bit of record 400", func(f *dmgFiles) { dmgFlip(f.journal, r400.off+12, 1) }, keepB400, keepJ400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := a.files()
			tt.apply(f)
			path := f.write(t)
			code, lines, out := runServerFlag(t, path, "-repair")
			l, ok := testutil.FindOne(lines, "reparar", "success")
			brokenB, _ := filepath.Glob(path + ".broken-*")
			brokenJ, _ := filepath.Glob(path + ".journal.broken-*")
			movedB, movedJ := l.Get("moved_bets_bytes"), l.Get("moved_journal_bytes")
			tb.add("Repair/"+tt.name, tt.damage, fmt.Sprintf("-repair: exit %d, kept bets %s and journal %s bytes, moved %s + %s bytes to .broken files",
				code, l.Get("verified_bets_bytes"), l.Get("verified_journal_bytes"), movedB, movedJ), movedB+"+"+movedJ)
			if code != 0 || !ok {
				t.Fatalf("-repair exited %d without one reparar success line:\n%s", code, out)
			}
			if movedB != strconv.FormatInt(size-tt.keepB, 10) || movedJ != strconv.FormatInt(int64(len(a.journal))-tt.keepJ, 10) {
				t.Errorf("%s; want moved_bets_bytes %d, moved_journal_bytes %d", l.Raw, size-tt.keepB, int64(len(a.journal))-tt.keepJ)
			}
			if len(brokenB) != 1 || len(brokenJ) != 1 || l.Get("broken_bets") != brokenB[0] || l.Get("broken_journal") != brokenJ[0] {
				t.Fatalf("broken files %q and %q, want one each, named in %s", brokenB, brokenJ, l.Raw)
			}
			if got := dmgRead(t, brokenB[0]); !bytes.Equal(got, f.bets[tt.keepB:]) {
				t.Errorf("%s holds %d bytes, want the %d removed", brokenB[0], len(got), len(f.bets[tt.keepB:]))
			}
			if got := dmgRead(t, brokenJ[0]); !bytes.Equal(got, f.journal[tt.keepJ:]) {
				t.Errorf("%s holds %d bytes, want the %d removed", brokenJ[0], len(got), len(f.journal[tt.keepJ:]))
			}
			expectRecovery(t, tb, "Repair/"+tt.name+" then start", "(the repaired files)", path, recovery{
				bets: a.bets[:tt.keepB], journal: a.journal[:tt.keepJ], apuestas: a.betsUpTo(tt.keepJ),
			})
		})
	}
}

// dmgStrayQuote is a course-format row with a stray quote, as the
// course's Python writes it (csv.QUOTE_MINIMAL leaves O"Brien alone).
const dmgStrayQuote = "1,Conan,O\"Brien,123,1990-01-01,7574\r\n"

// dmgAdopt gives the central a journal-less course-format file whose last
// row holds a stray quote: it refuses it, -check says why, and -repair
// adopts every complete row.
func dmgAdopt(t *testing.T, tb *dmgTable, a *ackedState) {
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
	if len(broken) != 0 || len(journal) != len(dmgMagic)+dmgRecordSize {
		t.Errorf("adoption moved %q aside and wrote a %d-byte journal; want nothing moved and magic plus one base record", broken, len(journal))
	}
	if !bytes.Equal(dmgRead(t, path), f.bets) {
		t.Errorf("adoption changed bets.csv")
	}
	expectRecovery(t, tb, "Adopt/start", "(the adopted file)", path, recovery{bets: f.bets, journal: journal, apuestas: rows})
}

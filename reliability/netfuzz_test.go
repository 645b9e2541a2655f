package reliability

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lottery"
	"lottery/internal/testutil"
	"lottery/protocol"
)

// Bounds of the network fuzz: at most fuzzConns connections, fuzzParallel
// at a time, for at most fuzzBudget (it stops earlier once every
// connection was made and the agencies are done).
const (
	fuzzConns    = 10000
	fuzzParallel = 50
	fuzzBudget   = 40 * time.Second
)

// fuzzSeq is far beyond any real batch sequence: a fuzzed batch or
// finished that somehow passed every check would still be refused as out
// of sequence, so the fuzz can never store or finish anything.
const fuzzSeq = 1 << 50

// fuzzInput returns what one hostile connection sends: random bytes, or
// valid frames broken in one of the ways the issue names. agency is the
// agency the frames speak for (the connection's own, when it has a
// certificate), agencies how many the central knows.
func fuzzInput(t testing.TB, rnd *rand.Rand, agency uint32, agencies int) (kind string, out []byte) {
	other := uint32(1 + (int(agency)+rnd.IntN(agencies-1))%agencies) // another known agency
	hello := testutil.Frame(t, protocol.Hello{Agency: agency})
	bet := goodBet
	bet.Document = strconv.Itoa(1 + rnd.IntN(99999999))
	batch := testutil.BatchFrame(t, agency, fuzzSeq+rnd.Uint64N(1<<20), bet, goodBet)
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	switch k := rnd.IntN(17); k {
	case 0:
		return "random bytes", randomBytes(rnd.IntN(10000))
	case 16:
		// The first byte says TLS; what follows is not a ClientHello.
		return "garbage handshake", cat([]byte{0x16, 3, byte(rnd.IntN(4))}, randomBytes(rnd.IntN(600)))
	case 1:
		// A plausible header (version 1, any type, any length) and random
		// bytes, possibly fewer than it claims.
		typ := protocol.Type(rnd.IntN(12))
		n := rnd.IntN(protocol.MaxPayloadSize + 1)
		return "random payload", cat(header(1, typ, n), randomBytes(rnd.IntN(n+1)))
	case 2:
		// Valid frames with random bytes flipped, and no Hello first: no
		// batch can be stored on a connection that never identified.
		b := cat(testutil.Frame(t, protocol.Echo{Data: []byte("ping")}), batch, testutil.Frame(t, protocol.WinnersQuery{Agency: agency}))
		for range 1 + rnd.IntN(8) {
			b[rnd.IntN(len(b))] = byte(rnd.Uint32())
		}
		return "flipped frames", b
	case 3:
		return "bad version", cat(hello, header(byte(2+rnd.IntN(254)), protocol.TypeBatch, len(batch)-4), batch[4:])
	case 4:
		return "unknown type", cat(hello, header(1, protocol.Type(11+rnd.IntN(245)), 4), []byte{0, 0, 0, 1})
	case 5:
		return "oversize", cat(hello, header(1, protocol.TypeBatch, protocol.MaxPayloadSize+1+rnd.IntN(60000)), batch[4:])
	case 6:
		return "truncated", cat(hello, batch[:4+rnd.IntN(len(batch)-4)])
	case 7:
		// A string length field that claims more than the frame holds.
		b := cat(hello, batch)
		binary.BigEndian.PutUint16(b[len(hello)+protocol.HeaderSize+14+2:], uint16(200+rnd.IntN(60000)))
		return "lying string length", b
	case 8:
		b := cat(hello, batch)
		binary.BigEndian.PutUint16(b[len(hello)+protocol.HeaderSize+12:], uint16(3+rnd.IntN(1000)))
		return "lying bet count", b
	case 9:
		return "batch for another agency", cat(hello, testutil.BatchFrame(t, other, fuzzSeq, goodBet))
	case 10:
		return "winners for another agency", cat(hello, testutil.Frame(t, protocol.WinnersQuery{Agency: other}))
	case 11:
		outside := []uint32{0, uint32(agencies + 1 + rnd.IntN(1000)), 1<<32 - 1}[rnd.IntN(3)]
		return "agency outside", testutil.Frame(t, protocol.Hello{Agency: outside})
	case 12:
		fin := testutil.Frame(t, protocol.Finished{Agency: agency, LastSeq: fuzzSeq})
		return "second finished", cat(hello, fin, fin)
	case 13:
		bad := goodBet
		bad.Birthdate = "2999-01-01"
		return "invalid bet", cat(hello, testutil.BatchFrame(t, agency, fuzzSeq, bad))
	case 14:
		return "second hello", cat(hello, hello)
	default:
		// Many valid echoes, then garbage: the answers must come in order.
		var b []byte
		for range 1 + rnd.IntN(20) {
			b = append(b, testutil.Frame(t, protocol.Echo{Data: randomBytes(rnd.IntN(100))})...)
		}
		return "echoes then garbage", append(b, randomBytes(1+rnd.IntN(100))...)
	}
}

// TestCentral_NetworkFuzz opens thousands of hostile connections to the
// built central, bounded in number, concurrency and time, while five real
// agencies upload: the agencies finish with the right winners, the bets
// file holds exactly their valid rows, the central logged fail lines for
// the bad input, stays up, and exits 0 on SIGTERM.
//
// The hostile peers are of three kinds. Strangers speak plain text (they
// may only echo, so every frame they send is refused, after it is read) or
// TLS without a certificate (refused at the handshake). Insiders hold a
// certificate of the lottery's CA and reach every protocol check: each
// fuzzing goroutine is its own agency, 6 and up, so insiders never take
// over each other's session nor a real agency's (the newest connection of
// an agency replaces the older: TestAttack_SameCertificate). The draw
// waits for every agency of AGENCIES, so once the fuzz is over the test
// finishes the insiders' agencies with nothing stored, like an agency with
// no bets.
func TestCentral_NetworkFuzz(t *testing.T) {
	testutil.Long(t)
	d := loadDataset(t, 4000)
	const firstInsider = testutil.DatasetAgencies + 1
	agencyCount := d.agencies + fuzzParallel
	testutil.PKI(t, agencyCount)
	server, betsPath := startCentral(t, map[string]string{
		"AGENCIES": strconv.Itoa(agencyCount), "IDLE_TIMEOUT": "5s", "SERVER_LISTEN_BACKLOG": "256",
	})
	agencies := make([]*testutil.Proc, d.agencies)
	for a := 1; a <= d.agencies; a++ {
		agencies[a-1] = testutil.StartClient(t, "agency-"+strconv.Itoa(a), t.TempDir(), agencyEnv(d, a, server.Addr, map[string]string{
			"CLI_BATCH_MAXAMOUNT": "20", "CLI_RECONNECT_INITIAL": "20ms", "CLI_RECONNECT_MAX": "200ms",
		}))
	}
	agenciesDone := make(chan struct{})
	go func() {
		for _, p := range agencies {
			<-p.Done()
		}
		close(agenciesDone)
	}()
	stranger := agencyTLS(t, 1, server.Addr)
	stranger.Certificates = nil

	var (
		mu        sync.Mutex
		kinds     = map[string]int{}
		codes     = map[lottery.Code]int{}
		netErrors = map[string]int{}
		sentBytes atomic.Int64
		next      atomic.Int64
	)
	deadline := time.Now().Add(fuzzBudget)
	began := time.Now()
	var wg sync.WaitGroup
	for w := range fuzzParallel {
		insider := firstInsider + w
		cfg := agencyTLS(t, insider, server.Addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > fuzzConns || time.Now().After(deadline) {
					return
				}
				rnd := rand.New(rand.NewPCG(uint64(i), 0xf022))
				var (
					peer   string
					frames []protocol.Frame
					err    error
				)
				switch rnd.IntN(4) {
				case 0:
					peer = "plain"
					kind, out := fuzzInput(t, rnd, uint32(1+rnd.IntN(agencyCount)), agencyCount)
					peer += "/" + kind
					sentBytes.Add(int64(len(out)))
					frames, err = exchange(server.Addr, 20*time.Second, out)
				case 1:
					peer = "tls without certificate"
					_, out := fuzzInput(t, rnd, uint32(1+rnd.IntN(agencyCount)), agencyCount)
					sentBytes.Add(int64(len(out)))
					frames, err = exchangeTLS(server.Addr, stranger, 20*time.Second, out)
				default:
					kind, out := fuzzInput(t, rnd, uint32(insider), agencyCount)
					peer = "insider/" + kind
					sentBytes.Add(int64(len(out)))
					frames, err = exchangeTLS(server.Addr, cfg, 20*time.Second, out)
				}
				mu.Lock()
				kinds[peer]++
				for _, c := range errorCodes(frames) {
					codes[c]++
				}
				if err != nil {
					netErrors[strings.SplitN(err.Error(), ": ", 2)[0]]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	made := min(next.Load()-fuzzParallel, fuzzConns)
	fuzzTime := time.Since(began)
	if server.Exited() {
		t.Fatalf("the central died under the fuzz (code %d):\n%s", server.ExitCode(), tail(server.Output(), 30))
	}
	// The insiders finish, with nothing stored: the draw can run.
	for a := firstInsider; a <= agencyCount; a++ {
		frames, err := exchangeTLS(server.Addr, agencyTLS(t, a, server.Addr), 30*time.Second,
			cat(testutil.Frame(t, protocol.Hello{Agency: uint32(a)}), testutil.Frame(t, protocol.Finished{Agency: uint32(a)})))
		var got []string
		for _, f := range frames {
			got = append(got, f.Type.String())
		}
		if err != nil || !slices.Equal(got, []string{"welcome", "finished_ack"}) {
			t.Errorf("insider %d finishing: answered %q (%v), want welcome and finished_ack", a, got, err)
		}
	}
	select {
	case <-agenciesDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("the agencies did not finish")
	}
	for a, p := range agencies {
		checkAgency(t, p, a+1, d.winners[a])
	}
	stopCentral(t, server)
	checkStored(t, betsPath, d.rows)

	out := server.Output()
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("the central panicked:\n%s", tail(out, 40))
	}
	fails := len(testutil.Results(server.Lines(), "fail"))
	if fails < int(made)/2 {
		t.Errorf("%d fail log lines for %d hostile connections, want at least %d", fails, made, made/2)
	}
	var hist []string
	for c, n := range codes {
		hist = append(hist, fmt.Sprintf("%s=%d", c, n))
	}
	sort.Strings(hist)
	var peers []string
	for k, n := range kinds {
		peers = append(peers, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(peers)
	t.Logf("network fuzz: %d connections (%d at a time, budget %v) in %v, %d bytes sent; inputs %v; error codes answered %v; "+
		"client-side errors %v; %d fail lines logged; the five agencies stored %d bets exactly once",
		made, fuzzParallel, fuzzBudget, fuzzTime.Round(time.Millisecond), sentBytes.Load(), peers, hist, netErrors, fails, len(d.rows))
	if made < fuzzConns/10 {
		t.Errorf("only %d connections in the budget: the fuzz proved little", made)
	}
}

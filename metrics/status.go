package metrics

import (
	"encoding/base64"
	"fmt"
	"time"
)

// Phases of the lottery, Status.Phase.
const (
	PhaseReceiving = "receiving" // no agency has finished yet
	PhaseWaiting   = "waiting"   // some have, the draw waits for the rest
	PhaseDrawn     = "drawn"     // the draw is done
)

// Paging of Snapshot: a central may wait for a thousand agencies, and the
// page shows one screenful at a time while the totals cover them all.
const (
	DefaultPerPage = 50
	MaxPerPage     = 500
)

// Status is the status page's model, the JSON of /status.json. Totals
// cover every agency; Rows only the requested page.
type Status struct {
	Phase     string `json:"phase"`      // PhaseReceiving, PhaseWaiting or PhaseDrawn
	PhaseText string `json:"phase_text"` // "receiving", "waiting for 3 agencies", "drawn"
	// DrawnAt is when the draw happened, nil before it.
	DrawnAt *time.Time `json:"drawn_at"`

	Agencies  int `json:"agencies"`  // the agencies the central waits for
	Connected int `json:"connected"` // agencies with a connection open
	Finished  int `json:"finished"`  // agencies that said they are done
	Pending   int `json:"pending"`   // agencies the draw still waits for

	Totals Totals `json:"totals"`
	// Refusals counts refused batches by code, every agency together
	// (codes never seen are absent).
	Refusals map[string]uint64 `json:"refusals"`

	Page    int            `json:"page"` // 1-based, within 1..Pages
	PerPage int            `json:"per_page"`
	Pages   int            `json:"pages"`
	Rows    []AgencyStatus `json:"rows"`

	Rate        Rate  `json:"rate"`
	Connections int64 `json:"connections"` // open on the agencies' port
	Store       Store `json:"store"`
	InFlight    int64 `json:"inflight_bytes"`
	InFlightCap int64 `json:"inflight_limit_bytes"`

	// Replicated is true for a node of a Raft group; Leader, Applied and
	// Nodes are about the group then.
	Replicated bool         `json:"replicated"`
	Leader     bool         `json:"leader"`
	Applied    uint64       `json:"applied"`
	Nodes      []NodeStatus `json:"nodes"`

	// Checkpoint is the audit log's latest, nil when there is none.
	Checkpoint *Checkpoint `json:"checkpoint"`
}

// Totals sum the agencies' counters.
type Totals struct {
	Bets       uint64 `json:"bets"`
	Batches    uint64 `json:"batches"` // stored
	Duplicates uint64 `json:"duplicates"`
	Refused    uint64 `json:"refused"`
	Winners    int64  `json:"winners"` // 0 before the draw
}

// AgencyStatus is one row of the page's table.
type AgencyStatus struct {
	Agency      uint32 `json:"agency"`
	Connections int32  `json:"connections"` // authenticated connections open
	Bets        uint64 `json:"bets"`
	Batches     uint64 `json:"batches"`
	Duplicates  uint64 `json:"duplicates"`
	Refused     uint64 `json:"refused"`
	Finished    bool   `json:"finished"`
	// Winners is nil before the draw.
	Winners *int64 `json:"winners"`
}

// Store is what the page shows of the bets file.
type Store struct {
	Bytes            int64   `json:"bytes"`
	Bets             int64   `json:"bets"`
	LastFsyncSeconds float64 `json:"last_fsync_seconds"` // 0 before the first
}

// Snapshot returns the page's model with page (1-based) of perPage
// agencies. Out-of-range values are brought in range: perPage to
// 1..MaxPerPage (DefaultPerPage when 0 or less), page to 1..Pages. Like a
// scrape, it reads each counter once, not all of them at one instant.
func (l *Lottery) Snapshot(page, perPage int) Status {
	if l == nil {
		return Status{Phase: PhaseReceiving, PhaseText: PhaseReceiving, Page: 1, PerPage: DefaultPerPage, Pages: 1,
			Rows: []AgencyStatus{}, Refusals: map[string]uint64{}, Rate: Rate{Samples: []float64{}}, Nodes: []NodeStatus{}}
	}
	st := Status{Agencies: l.Agencies(), Refusals: map[string]uint64{}}
	st.PerPage, st.Page, st.Pages = pageBounds(page, perPage, st.Agencies)
	first := (st.Page-1)*st.PerPage + 1
	last := min(first+st.PerPage-1, st.Agencies)
	drawnAt := l.drawnAt.Load()
	st.Rows = make([]AgencyStatus, 0, max(last-first+1, 0))
	for i := range l.agencies {
		row := l.row(i, drawnAt != 0)
		st.Totals.Bets += row.Bets
		st.Totals.Batches += row.Batches
		st.Totals.Duplicates += row.Duplicates
		st.Totals.Refused += row.Refused
		if row.Winners != nil {
			st.Totals.Winners += *row.Winners
		}
		for c := range l.agencies[i].codes {
			if n := l.agencies[i].codes[c].Load(); n > 0 {
				st.Refusals[codeNames[c]] += n
			}
		}
		if i == unknownAgency {
			continue
		}
		if row.Connections > 0 {
			st.Connected++
		}
		if row.Finished {
			st.Finished++
		}
		if i >= first && i <= last {
			st.Rows = append(st.Rows, row)
		}
	}
	st.Pending = st.Agencies - st.Finished
	st.Phase, st.PhaseText = phase(st.Finished, st.Pending, drawnAt != 0)
	if drawnAt != 0 {
		at := time.Unix(0, drawnAt).UTC()
		st.DrawnAt = &at
	}
	st.Rate = l.history.rate()
	st.Connections = l.connsOpen.Load()
	st.Store = Store{Bytes: l.storeBytes.Load(), Bets: l.storeBets.Load(),
		LastFsyncSeconds: time.Duration(l.lastFsync.Load()).Seconds()}
	st.InFlight, st.InFlightCap = l.inFlight.Load(), l.inFlightCap.Load()
	st.Replicated = l.raft.replicated.Load()
	st.Leader = l.raft.leader.Load()
	st.Applied = l.raft.applied.Load()
	st.Nodes = l.nodeList()
	if st.Nodes == nil {
		st.Nodes = []NodeStatus{}
	}
	st.Checkpoint = l.latestCheckpoint()
	return st
}

// row reads agency i's counters.
func (l *Lottery) row(i int, drawn bool) AgencyStatus {
	s := &l.agencies[i]
	row := AgencyStatus{
		Agency:      uint32(i),
		Connections: s.sessions.Load(),
		Bets:        s.bets.Load(),
		Batches:     s.stored.Load(),
		Duplicates:  s.duplicates.Load(),
		Refused:     s.refused.Load(),
		Finished:    s.finished.Load(),
	}
	if drawn {
		w := s.winners.Load()
		row.Winners = &w
	}
	return row
}

// pageBounds brings a requested page and page size in range for agencies
// rows. There is always at least one page, empty when there are no agencies.
func pageBounds(page, perPage, agencies int) (size, p, pages int) {
	size = perPage
	if size <= 0 {
		size = DefaultPerPage
	}
	size = min(size, MaxPerPage)
	pages = max((agencies+size-1)/size, 1)
	p = min(max(page, 1), pages)
	return size, p, pages
}

// phase names the lottery's phase, for machines and for people.
func phase(finished, pending int, drawn bool) (string, string) {
	switch {
	case drawn:
		return PhaseDrawn, PhaseDrawn
	case finished == 0:
		return PhaseReceiving, PhaseReceiving
	case pending == 0: // the draw is being held
		return PhaseWaiting, "waiting for the draw"
	case pending == 1:
		return PhaseWaiting, "waiting for 1 agency"
	}
	return PhaseWaiting, fmt.Sprintf("waiting for %d agencies", pending)
}

// encodeRoot writes a checkpoint's root hash as the C2SP checkpoint text
// does: standard base64.
func encodeRoot(root []byte) string { return base64.StdEncoding.EncodeToString(root) }

package metrics

import (
	"strings"

	"lottery"
	"lottery/pki"
)

// Label values are bounded sets, known when the package is built: a label
// taken from the wire (a code a peer made up, an agency number nobody
// configured) could otherwise create series without end. Whatever is not in
// a set is counted under Other.

// Other is the label value of everything outside a bounded set.
const Other = "other"

// Results of a batch besides its refusal codes (lottery_batches_total's
// result label).
const (
	ResultStored    = "stored"
	ResultDuplicate = "duplicate"
)

// Why a connection was refused or closed before it was served
// (lottery_connections_refused_total's reason label). The central logs the
// same words as `reason: …` or `error: …`.
const (
	ReasonTooManyConnections    = "too_many_connections"    // MaxConnections reached
	ReasonUnauthenticatedLimit  = "unauthenticated_limit"   // the oldest unauthenticated connection evicted
	ReasonAgencyConnectionLimit = "agency_connection_limit" // an agency at its cap of connections
	ReasonShuttingDown          = "shutting_down"           // the central is stopping
	ReasonNotLeader             = "not_leader"              // a follower of a replicated central
)

// connReasons is the bounded set of connection refusals, Other last.
var connReasons = []string{
	ReasonTooManyConnections,
	ReasonUnauthenticatedLimit,
	ReasonAgencyConnectionLimit,
	ReasonShuttingDown,
	ReasonNotLeader,
	Other,
}

// handshakeReasons is the bounded set of failed TLS handshakes: pki.Reason's
// words, which pki owns, and Other last.
var handshakeReasons = []string{
	pki.ReasonNoCertificate,
	pki.ReasonUnknownCA,
	pki.ReasonExpired,
	pki.ReasonRevoked,
	pki.ReasonNotAnAgency,
	pki.ReasonBadCert,
	pki.ReasonTimeout,
	pki.ReasonProtocol,
	Other,
}

// indexOf returns where reason is in set, or the index of Other (the last).
func indexOf(set []string, reason string) int {
	for i, r := range set[:len(set)-1] {
		if r == reason {
			return i
		}
	}
	return len(set) - 1
}

// codeSlots is how many refusal codes a counter array holds: lottery.Code is
// a byte on the wire, and the domain defines far fewer than this; a code at
// or past it is counted as Other.
const codeSlots = 32

// codeNames are the result labels of refused batches, indexed by code: the
// domain's stable names (lottery.Code.String), Other for the codes the
// domain does not define (String's "code_N") and for OK, which is not a
// refusal.
var codeNames = func() [codeSlots]string {
	var names [codeSlots]string
	for i := range names {
		name := lottery.Code(i).String()
		if lottery.Code(i) == lottery.NoError || strings.HasPrefix(name, "code_") {
			name = Other
		}
		names[i] = name
	}
	return names
}()

// codeSlot returns the counter index of a refusal code.
func codeSlot(c lottery.Code) int {
	if int(c) >= codeSlots || codeNames[c] == Other {
		return otherCodeSlot
	}
	return int(c)
}

// otherCodeSlot is where codes outside the domain's are counted: OK's slot,
// which no refusal uses.
const otherCodeSlot = int(lottery.NoError)

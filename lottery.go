// Package lottery is the domain of the Lotería Nacional: bets, the rules a
// bet must follow, the winning number, the error codes the central answers
// with, and the Ledger, the contract between the central and what keeps its
// bets. It does no I/O; every other package depends on it.
package lottery

import (
	"errors"
	"fmt"
)

// Counted reports whether agency is one of the agencies 1..n a draw waits
// for. A store may hold agencies a central configured with fewer no longer
// counts: they neither hold up the draw nor complete it.
func Counted(agency uint32, n int) bool { return agency >= 1 && int64(agency) <= int64(n) }

// WinningNumber is the number drawn by the Lotería Nacional: a bet wins when
// it played exactly this number (the course's has_won).
const WinningNumber = 7574

// Code classifies an error both in logs and on the wire: the central answers
// a peer with a Code, never with its internal error text.
type Code uint8

// Codes sent in BatchAck and Error messages. Their values are part of the
// protocol (docs/protocol.md): never renumber them.
const (
	NoError          Code = 0  // no error: stored, or answered
	EInvalidBet      Code = 1  // a bet breaks the bet rules
	EWrongAgency     Code = 2  // a message names another agency than the connection's
	EMalformed       Code = 3  // a frame or message that cannot be decoded
	EUnknownType     Code = 4  // a message type the central does not know
	EVersion         Code = 5  // a protocol version the central does not speak
	ETooLarge        Code = 6  // a frame longer than the 8 KiB limit
	ESequence        Code = 7  // a batch out of sequence (a gap, or finished too early)
	EStorage         Code = 8  // the bets could not be made durable; retry later
	EAlreadyFinished Code = 9  // a second "finished" on the same connection
	ENotIdentified   Code = 10 // a message that needs a Hello first
	EUnknownAgency   Code = 11 // an agency number outside 1..AGENCIES
	EShuttingDown    Code = 12 // the central is stopping; retry later
	ETooManyConns    Code = 13 // the connection limit is reached; retry later
	EUnexpectedMsg   Code = 14 // a valid message in the wrong place (e.g. a second Hello)
	EIdle            Code = 15 // the connection was idle or too slow for too long
	EInternal        Code = 16 // anything else
	EConflict        Code = 17 // a batch number already stored with other bets
	ETLSRequired     Code = 18 // a request in plain text to a central that requires TLS
	ENotLeader       Code = 19 // a replica that does not lead; the message is the leader's address, or empty
	maxCode          Code = ENotLeader
)

var codeNames = [...]string{
	NoError:          "ok",
	EInvalidBet:      "invalid_bet",
	EWrongAgency:     "wrong_agency",
	EMalformed:       "malformed",
	EUnknownType:     "unknown_type",
	EVersion:         "bad_version",
	ETooLarge:        "too_large",
	ESequence:        "bad_sequence",
	EStorage:         "storage",
	EAlreadyFinished: "already_finished",
	ENotIdentified:   "not_identified",
	EUnknownAgency:   "unknown_agency",
	EShuttingDown:    "shutting_down",
	ETooManyConns:    "too_many_connections",
	EUnexpectedMsg:   "unexpected_message",
	EIdle:            "idle_timeout",
	EInternal:        "internal",
	EConflict:        "conflict",
	ETLSRequired:     "tls_required",
	ENotLeader:       "not_leader",
}

// String returns the code's stable name, used in log lines.
func (c Code) String() string {
	if c <= maxCode {
		return codeNames[c]
	}
	return fmt.Sprintf("code_%d", uint8(c))
}

// publicMessages are what a peer is told about each code: a fixed text,
// never an error's detail, which may name files or internal state.
var publicMessages = map[Code]string{
	EStorage:      "the bets could not be made durable; retry later",
	EInternal:     "internal error",
	EShuttingDown: "the central is stopping; retry later",
	EConflict:     "already stored with other content",
}

// PublicMessage returns the fixed text a peer receives with code.
func PublicMessage(c Code) string {
	if m, ok := publicMessages[c]; ok {
		return m
	}
	return c.String()
}

// Retryable reports whether a peer may send the same request again later
// and expect it to succeed: the failure was the central's state, not the
// request's content.
func (c Code) Retryable() bool {
	switch c {
	case EStorage, EShuttingDown, ETooManyConns, EIdle, ENotLeader:
		return true
	}
	return false
}

// Error is the domain's error: a Code for machines and a message for people.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the Code of the first *Error in err's chain, NoError for nil
// and EInternal for any other error.
func ErrorCode(err error) Code {
	if err == nil {
		return NoError
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

package lottery_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"lottery"
)

func TestWins(t *testing.T) {
	tests := []struct {
		number int
		want   bool
	}{
		{lottery.WinningNumber, true},
		{7574, true},
		{7573, false},
		{7575, false},
		{0, false},
		{9999, false},
		{-7574, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.number), func(t *testing.T) {
			if got := lottery.Wins(tt.number); got != tt.want {
				t.Errorf("Wins(%d) = %v, want %v", tt.number, got, tt.want)
			}
			b := okBet
			b.Number = tt.number
			if got := b.HasWon(); got != tt.want {
				t.Errorf("Bet{Number: %d}.HasWon() = %v, want %v", tt.number, got, tt.want)
			}
		})
	}
}

func TestCode_String(t *testing.T) {
	tests := []struct {
		code lottery.Code
		want string
	}{
		{lottery.NoError, "ok"},
		{lottery.EInvalidBet, "invalid_bet"},
		{lottery.EWrongAgency, "wrong_agency"},
		{lottery.EMalformed, "malformed"},
		{lottery.EUnknownType, "unknown_type"},
		{lottery.EVersion, "bad_version"},
		{lottery.ETooLarge, "too_large"},
		{lottery.ESequence, "bad_sequence"},
		{lottery.EStorage, "storage"},
		{lottery.EAlreadyFinished, "already_finished"},
		{lottery.ENotIdentified, "not_identified"},
		{lottery.EUnknownAgency, "unknown_agency"},
		{lottery.EShuttingDown, "shutting_down"},
		{lottery.ETooManyConns, "too_many_connections"},
		{lottery.EUnexpectedMsg, "unexpected_message"},
		{lottery.EIdle, "idle_timeout"},
		{lottery.EInternal, "internal"},
		{lottery.EConflict, "conflict"},
		{lottery.ETLSRequired, "tls_required"},
		{lottery.ENotLeader, "not_leader"},
		{20, "code_20"},
		{255, "code_255"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.code.String(); got != tt.want {
				t.Errorf("Code(%d).String() = %q, want %q", uint8(tt.code), got, tt.want)
			}
		})
	}
}

// TestCode_Values pins the wire values: they are part of the protocol.
func TestCode_Values(t *testing.T) {
	codes := []lottery.Code{lottery.NoError, lottery.EInvalidBet, lottery.EWrongAgency, lottery.EMalformed,
		lottery.EUnknownType, lottery.EVersion, lottery.ETooLarge, lottery.ESequence, lottery.EStorage,
		lottery.EAlreadyFinished, lottery.ENotIdentified, lottery.EUnknownAgency, lottery.EShuttingDown,
		lottery.ETooManyConns, lottery.EUnexpectedMsg, lottery.EIdle, lottery.EInternal, lottery.EConflict, lottery.ETLSRequired, lottery.ENotLeader}
	seen := map[string]bool{}
	for i, c := range codes {
		if int(c) != i {
			t.Errorf("%v = %d, want %d", c, uint8(c), i)
		}
		if seen[c.String()] {
			t.Errorf("name %q used twice", c)
		}
		seen[c.String()] = true
	}
}

func TestCode_Retryable(t *testing.T) {
	retryable := map[lottery.Code]bool{lottery.EStorage: true, lottery.EShuttingDown: true, lottery.ETooManyConns: true, lottery.EIdle: true, lottery.ENotLeader: true}
	for c := lottery.Code(0); c < 20; c++ {
		t.Run(c.String(), func(t *testing.T) {
			if got := c.Retryable(); got != retryable[c] {
				t.Errorf("%v.Retryable() = %v, want %v", c, got, retryable[c])
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	inner := lottery.Errorf(lottery.ESequence, "batch %d after batch %d", 5, 3)
	tests := []struct {
		name string
		err  error
		want lottery.Code
	}{
		{"Nil", nil, lottery.NoError},
		{"Error", inner, lottery.ESequence},
		{"Wrapped", fmt.Errorf("store: %w", inner), lottery.ESequence},
		{"WrappedTwice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", inner)), lottery.ESequence},
		{"Joined", errors.Join(io.EOF, inner), lottery.ESequence},
		{"FirstOfTwo", fmt.Errorf("%w; %w", lottery.Errorf(lottery.EStorage, "x"), inner), lottery.EStorage},
		{"Plain", io.EOF, lottery.EInternal},
		{"PlainWrapped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), lottery.EInternal},
		{"ValueNotPointer", fmt.Errorf("%v", inner), lottery.EInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lottery.ErrorCode(tt.err); got != tt.want {
				t.Errorf("ErrorCode(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestError_Error(t *testing.T) {
	err := lottery.Errorf(lottery.EInvalidBet, "document %q is not all digits", "12a")
	if got, want := err.Error(), `invalid_bet: document "12a" is not all digits`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if err.Code != lottery.EInvalidBet || !strings.Contains(err.Message, "12a") {
		t.Errorf("Errorf gave %+v", err)
	}
}

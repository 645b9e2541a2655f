package agency

import (
	"errors"
	"testing"

	"lottery"
)

// TestPlainError: the 5 bytes a TLS handshake found instead of a record are
// read as the central's plain Error frame when they are one.
func TestPlainError(t *testing.T) {
	tests := []struct {
		name      string
		head      [5]byte
		code      lottery.Code
		retryable bool
	}{
		{"OK/TooManyConnections", [5]byte{1, 0x0A, 0, 40, byte(lottery.ETooManyConns)}, lottery.ETooManyConns, true},
		{"OK/Refused", [5]byte{1, 0x0A, 0, 10, byte(lottery.EUnknownAgency)}, lottery.EUnknownAgency, false},
		{"ErrNotAnErrorFrame", [5]byte{1, 0x02, 0, 8, 0}, 0, false},
		{"ErrHTTP", [5]byte{'H', 'T', 'T', 'P', '/'}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := plainError(tt.head)
			var e *lottery.Error
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("plainError = %v, want nil", err)
				}
				return
			}
			if !errors.As(err, &e) || e.Code != tt.code || retryable(err) != tt.retryable {
				t.Fatalf("plainError = %v (retryable %v), want code %v retryable %v", err, retryable(err), tt.code, tt.retryable)
			}
		})
	}
}

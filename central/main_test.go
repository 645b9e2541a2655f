package central_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine (a session, a responder, a
// store writer, an agency's receiver) outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

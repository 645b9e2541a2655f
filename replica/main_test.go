package replica_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that a closed node leaves no goroutine behind: Raft's,
// its transport's and its connections' end with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

//go:build unix

package storage

import (
	"errors"
	"fmt"
	"syscall"
)

// lock takes an exclusive advisory lock on f, so that a second central
// started on the same bets file refuses to start instead of interleaving
// its writes. The kernel releases it when the process dies, even by
// SIGKILL. Files that are not real (test doubles) are not locked.
func lock(f File) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return nil
	}
	err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errors.New("the bets file is in use by another central")
	}
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

//go:build unix

package bench

import (
	"os"
	"syscall"
	"time"
)

// processCPUSeconds is this process's user plus system CPU time so far.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return (time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds()
}

// maxRSS is a finished child's peak resident set in bytes (ru_maxrss is
// in KiB on Linux), or -1.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return int64(ru.Maxrss) * 1024
	}
	return -1
}

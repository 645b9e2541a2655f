//go:build !unix

package bench

import "os"

func processCPUSeconds() float64       { return -1 }
func maxRSS(ps *os.ProcessState) int64 { return -1 }

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"time"
)

// sampleEvery is how often the Go runtime's memory is sampled: often enough
// to catch a peak that lasts a few GC cycles.
const sampleEvery = 10 * time.Millisecond

// Runtime memory metrics sampled for the peaks.
const (
	metricHeapObjects = "/memory/classes/heap/objects:bytes"  // live and not yet swept heap objects
	metricTotal       = "/memory/classes/total:bytes"         // everything the runtime mapped
	metricReleased    = "/memory/classes/heap/released:bytes" // mapped but given back to the OS
)

// memSampler records the peaks of this process's Go memory while it runs.
type memSampler struct {
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	heapPeak   uint64 // peak of heap objects
	mappedPeak uint64 // peak of mapped minus released: the runtime's share of RSS
}

func startMemSampler() *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	samples := []metrics.Sample{{Name: metricHeapObjects}, {Name: metricTotal}, {Name: metricReleased}}
	read := func() {
		metrics.Read(samples)
		heap := samples[0].Value.Uint64()
		mapped := samples[1].Value.Uint64() - samples[2].Value.Uint64()
		m.mu.Lock()
		m.heapPeak = max(m.heapPeak, heap)
		m.mappedPeak = max(m.mappedPeak, mapped)
		m.mu.Unlock()
	}
	read()
	go func() {
		defer close(m.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				read()
			case <-m.stop:
				read()
				return
			}
		}
	}()
	return m
}

// Stop ends sampling and returns the peaks in bytes.
func (m *memSampler) Stop() (heapPeak, mappedPeak int64) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(m.heapPeak), int64(m.mappedPeak)
}

// settleMemory returns freed memory to the OS and resets this process's
// VmHWM, so a peak measured next belongs to what runs next and not to the
// data generation before it. It reports whether the reset worked (Linux
// 4.0 and later, /proc mounted).
func settleMemory() bool {
	runtime.GC()
	debug.FreeOSMemory()
	return resetPeakRSS("self")
}

// resetPeakRSS resets the VmHWM of a process ("self" or a pid):
// writing 5 to clear_refs is the documented way.
func resetPeakRSS(pid string) bool {
	return os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0) == nil
}

// peakRSS reads a process's VmHWM (peak resident set) in bytes, or -1.
func peakRSS(pid string) int64 {
	return procStatusBytes(pid, "VmHWM:")
}

// procStatusBytes reads a "Key:  N kB" line of /proc/<pid>/status.
func procStatusBytes(pid, key string) int64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(key)) {
			continue
		}
		f := bytes.Fields(line[len(key):])
		if len(f) == 0 {
			return -1
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return -1
		}
		if len(f) > 1 && string(f[1]) == "kB" {
			n *= 1024
		}
		return n
	}
	return -1
}

// procCPUSeconds reads the user plus system CPU time of a process from
// /proc/<pid>/stat, or -1.
func procCPUSeconds(pid string) float64 {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return -1
	}
	f := bytes.Fields(data[i+1:])
	// After ')': state is field 3, so utime (14) and stime (15) are at 11, 12.
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseFloat(string(f[11]), 64)
	st, err2 := strconv.ParseFloat(string(f[12]), 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const clockTicks = 100 // USER_HZ on Linux
	return (ut + st) / clockTicks
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted durations, or 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// fmtBytes prints a byte count in MiB, or "n/a" for an unknown one.
func fmtBytes(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// processMeter measures the benchmark's own process while a central runs
// in it (in-process or as a group of nodes): memory sampled, CPU from the
// start.
type processMeter struct {
	mem   *memSampler
	cpu0  float64
	reset bool // whether the RSS high-water mark was reset after data generation
}

func startProcessMeter() processMeter {
	reset := settleMemory()
	return processMeter{reset: reset, cpu0: processCPUSeconds(), mem: startMemSampler()}
}

// stop ends the sampling and returns the process's figures; who says what
// runs in the process ("central and agencies"…).
func (m processMeter) stop(who string) centralStats {
	st := centralStats{PeakRSS: peakRSS("self"), RSSScope: "process VmHWM (" + who + ")",
		CPUScope: "process (" + who + ")", CPUSeconds: processCPUSeconds() - m.cpu0}
	if !m.reset {
		st.RSSScope += ", not reset after data generation"
	}
	st.HeapPeak, st.MappedPeak = m.mem.Stop()
	return st
}

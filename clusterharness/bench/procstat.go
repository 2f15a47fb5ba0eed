package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoProcess is returned by the /proc readers when a PID does not exist (any more).
var ErrNoProcess = errors.New("no such process")

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times. It is 100 on every
// Linux architecture Go supports, and Go offers no sysconf to ask.
const clockTicks = 100

// ProcessMemory sums VmRSS (resident now) and VmHWM (resident peak) over pids, in KiB.
func ProcessMemory(pids []int) (rssKiB, peakKiB int64, err error) {
	for _, pid := range pids {
		data, readErr := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if readErr != nil {
			return rssKiB, peakKiB, fmt.Errorf("read status of pid %d: %w (%w)", pid, ErrNoProcess, readErr)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "VmRSS:"):
				rssKiB += kibField(line)
			case strings.HasPrefix(line, "VmHWM:"):
				peakKiB += kibField(line)
			}
		}
	}
	return rssKiB, peakKiB, nil
}

// kibField parses a "/proc/<pid>/status" line such as "VmRSS:	  12345 kB".
func kibField(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	v, _ := strconv.ParseInt(f[1], 10, 64)
	return v
}

// ProcessCPU sums user+system CPU time over pids (all threads of each).
func ProcessCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return total, fmt.Errorf("read stat of pid %d: %w (%w)", pid, ErrNoProcess, err)
		}
		// The command name (field 2) may hold spaces and parentheses; fields after the
		// last ')' are fixed: state is field 3, utime 14 and stime 15.
		rest := data[bytes.LastIndexByte(data, ')')+1:]
		f := strings.Fields(string(rest))
		if len(f) < 13 {
			return total, fmt.Errorf("parse stat of pid %d: only %d fields", pid, len(f))
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(utime+stime) * time.Second / clockTicks
	}
	return total, nil
}

// selfCPU is the generator's own user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package testbed

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ResidentKiB is a process's resident memory (VmRSS), in KiB.
func ResidentKiB(pid int) (int, error) { return procField(pid, "status", "VmRSS:") }

// WriteCalls is how many write system calls a process has made (syscw).
func WriteCalls(pid int) (int, error) { return procField(pid, "io", "syscw:") }

// procField is the number after key in /proc/pid/file (lines "key value
// [unit]").
func procField(pid int, file, key string) (int, error) {
	text, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(text), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/%s", strings.TrimSuffix(key, ":"), pid, file)
}

// clockTick is Linux's USER_HZ, the unit of /proc's CPU times: 100 on
// every architecture Slipway is built for.
const clockTick = 10 * time.Millisecond

// CPUTime is the CPU time (user and system) a process has used so far.
func CPUTime(pid int) (time.Duration, error) {
	_, cpu, err := procStat(pid)
	return cpu, err
}

// TreeCPUTime is the CPU time a process and every process under it (its
// children, theirs, …) have used so far: a browser's, which works in a
// process per role. Children already gone are not counted.
func TreeCPUTime(root int) (time.Duration, error) {
	total, err := CPUTime(root)
	if err != nil {
		return 0, err
	}
	all, err := processes()
	if err != nil {
		return 0, err
	}
	for pid, p := range all {
		for up := p.parent; up != 0 && pid != root; up = all[up].parent {
			if up == root {
				total += p.cpu
				break
			}
		}
	}
	return total, nil
}

// process is what TreeCPUTime needs of one process.
type process struct {
	parent int
	cpu    time.Duration
}

// processes are the machine's processes now, by pid; one that ends while
// they are read is left out.
func processes() (map[int]process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	all := map[int]process{}
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if parent, cpu, err := procStat(pid); err == nil {
				all[pid] = process{parent, cpu}
			}
		}
	}
	return all, nil
}

// procStat is a process's parent and its CPU time (user and system) so far.
func procStat(pid int) (ppid int, cpu time.Duration, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted from its closing parenthesis.
	end := strings.LastIndexByte(string(stat), ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, err0 := strconv.Atoi(f[1])               // field 4 of proc(5)
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err0 != nil || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: parent %q, CPU times %q %q", pid, f[1], f[11], f[12])
	}
	return ppid, time.Duration(utime+stime) * clockTick, nil
}

"""CPU time from /proc: per process tree, for the bench itself, and machine-wide.

Per-process figures are utime + stime of every thread of a process and its descendants
(/proc/<pid>/stat, /proc/<pid>/task/*/children); the machine's busy time is the first
line of /proc/stat. Whatever the machine was busy with beyond the processes we watch
and ourselves is "other": load we did not cause, which makes a run less trustworthy.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import msgspec

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# /proc/stat cpu columns counted as busy: user nice system irq softirq (not idle,
# iowait, or steal, which is time the hypervisor gave to other machines).
_BUSY_COLUMNS = (0, 1, 2, 5, 6)


def process_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by one process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()  # fields from the 3rd on: state, ppid, ...
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it that runs now."""
    found = [pid]
    for current in found:
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                found.extend(int(child) for child in task.read_text().split())
            except FileNotFoundError:  # the thread ended meanwhile
                continue
    return found


def tree_seconds(pid: int) -> float:
    total = 0.0
    for member in descendants(pid):
        try:
            total += process_seconds(member)
        except FileNotFoundError:  # exited meanwhile
            continue
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores of this machine have been busy since boot."""
    with open("/proc/stat") as stat:
        columns = stat.readline().split()[1:]
    return sum(int(columns[index]) for index in _BUSY_COLUMNS) / CLOCK_TICKS


class CpuSample(msgspec.Struct, frozen=True):
    wall: float
    processes: dict[str, float]
    bench: float
    machine: float


class CpuUsage(msgspec.Struct, frozen=True):
    """CPU seconds used between two samples, by role, plus wall-clock seconds."""

    wall: float
    processes: dict[str, float]
    bench: float
    other: float

    @property
    def other_share_of_core(self) -> float:
        return self.other / self.wall if self.wall > 0 else 0.0


class CpuWindow:
    """The CPU used while a `with CpuMeter.window()` block ran: set when it ends."""

    usage: CpuUsage


class CpuMeter:
    """Samples the CPU of named process trees, of this process and of the machine."""

    def __init__(self, roles: Mapping[str, int]) -> None:
        self.roles = dict(roles)

    @contextlib.contextmanager
    def window(self) -> Iterator[CpuWindow]:
        window = CpuWindow()
        start = self.sample()
        yield window
        window.usage = self.usage(start, self.sample())

    def sample(self) -> CpuSample:
        return CpuSample(
            wall=time.perf_counter(),
            processes={role: tree_seconds(pid) for role, pid in self.roles.items()},
            bench=time.process_time(),
            machine=machine_busy_seconds(),
        )

    @staticmethod
    def usage(start: CpuSample, end: CpuSample) -> CpuUsage:
        processes = {role: end.processes[role] - start.processes[role] for role in start.processes}
        bench = end.bench - start.bench
        ours = sum(processes.values()) + bench
        return CpuUsage(
            wall=end.wall - start.wall,
            processes=processes,
            bench=bench,
            # Tick rounding can make this a little negative when nothing else ran.
            other=max(0.0, end.machine - start.machine - ours),
        )


class Machine(msgspec.Struct, frozen=True):
    nproc: int
    cpu_model: str
    python: str
    kernel: str


def machine() -> Machine:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    return Machine(
        nproc=len(os.sched_getaffinity(0)),
        cpu_model=model,
        python=platform.python_version(),
        kernel=platform.release(),
    )


def peak_rss_mib(pid: int) -> float:
    """The process's resident-set high-water mark (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_peak_rss_mib(pid: int) -> float:
    """The sum of the high-water marks of every process below `pid` (an upper bound of
    their peak together: each may have peaked at another time)."""
    return sum(peak_rss_mib(child) for child in descendants(pid)[1:])

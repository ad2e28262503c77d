"""Training threads follow the cores other processes leave free (issue 17)."""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
import torch

from modelyard.train import threads
from modelyard.train.threads import AdaptiveThreads, free_cores, sample, threads_for


@pytest.mark.parametrize(
    ("others", "cores", "expected"),
    [
        (0.0, 2, 2),  # quiet machine: every core
        (0.2, 2, 2),  # daemons and a terminal do not count
        (0.9, 2, 1),  # one core busy elsewhere: one thread
        (1.6, 2, 1),  # never fewer than one
        (3.0, 2, 1),
        (1.0, 8, 7),
        (-0.3, 4, 4),  # counter jitter can make others' share slightly negative
    ],
)
def test_threads_leave_busy_cores_to_others(others: float, cores: int, expected: int) -> None:
    assert threads_for(others, cores) == expected


def test_machine_counters_are_read_from_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 50 1000 30 5 5 10 0 0\ncpu0 1 2 3 4\n")
    now = sample(stat)
    assert now is not None
    ticks = threads.os.sysconf("SC_CLK_TCK")
    assert now.machine_busy_s == pytest.approx((100 + 50 + 5 + 5 + 10) / ticks)
    assert sample(tmp_path / "missing") is None
    (tmp_path / "odd").write_text("intr 1 2 3\n")
    assert sample(tmp_path / "odd") is None


def _spin(stop: Event) -> None:
    while not stop.is_set():
        pass


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc/stat")
def test_a_process_spinning_beside_training_takes_a_thread_away() -> None:
    """A real busy-loop process beside us: the callback drops to cores - 1 threads."""
    cores = 2
    callback = AdaptiveThreads(cores=cores, every_s=0.5)
    before = torch.get_num_threads()
    torch.set_num_threads(cores)
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(cores)]
    try:
        for spinner in spinners:
            spinner.start()
        callback.last = sample()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and torch.get_num_threads() != 1:
            time.sleep(0.6)
            callback._check()
        assert torch.get_num_threads() == 1
        assert callback.changes[-1] == 1
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()
        torch.set_num_threads(before)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc/stat")
def test_a_deterministic_run_starts_with_the_cores_left_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """free_cores picks one count up front: with every core busy elsewhere, one thread."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(2)]
    try:
        for spinner in spinners:
            spinner.start()
        time.sleep(0.3)
        assert free_cores(window_s=0.5) == 1
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()
    monkeypatch.setattr(threads, "sample", lambda stat=None: None)
    assert free_cores() == 2  # no load to read: torch's default, every core


def test_a_burst_at_the_start_does_not_cost_a_run_a_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """A core busy during the short window while the minute's load is low: a process
    starting, not a job beside us; the run keeps every core."""
    samples = iter([threads.CpuSample(0.0, 100.0, 10.0), threads.CpuSample(0.3, 100.3, 10.0)])
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "sample", lambda stat=None: next(samples))
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert free_cores(window_s=0.0) == 2

"""The in-process benchmark still runs and still checks what it times (its
answers are compared with the baselines' before anything is timed); the
sustained-changes section of ``make bench`` still runs, briefly."""

import subprocess
import sys

from tests.servers import ROOT


def test_micro_benchmark_runs_and_prints_its_ratios():
    result = subprocess.run(
        [sys.executable, "-m", "bench.micro", "--rounds", "1", "--watchers", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("ratios (baseline time / ours): serializer=")
    names = [part.split("=")[0] for part in last.split(": ", 1)[1].split()]
    assert names == ["serializer", "retrieve", "fanout"]
    watches = result.stdout.strip().splitlines()[-2]
    assert watches.startswith("watches: one change for 20 watchers"), watches
    assert watches.endswith("(unchecked)"), watches
    assert all(float(part.split("=")[1]) > 0 for part in last.split(": ", 1)[1].split())


def test_changes_section_runs_and_prints_its_figures():
    """A second of commits to 5 watchers of 10 rows, from one writer process
    (Redis layer) and from the serving process (in-memory layer): every watcher
    ends with every row's last state, and both figures are printed."""
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "changes"]
        + ["--changes-seconds", "1", "--changes-watchers", "5"]
        + ["--changes-rows", "10", "--changes-writers", "1"]
        + ["--changes-in-process", "memory", "--changes-rates", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "5. Sustained changes" in result.stdout
    figures = dict(
        part.split("=") for part in result.stdout.strip().splitlines()[-1].split()[1:]
    )
    assert float(figures["changes_per_s"]) > 0  # not "lost" or "lagging"
    assert float(figures["groupsend_100_per_s"]) > 0

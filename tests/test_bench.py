"""The in-process benchmark still runs and still checks what it times (its
answers are compared with the baselines' before anything is timed)."""

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

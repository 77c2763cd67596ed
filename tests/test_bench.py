"""The in-process benchmark still runs and still checks what it times (its
answers are compared with the baselines' before anything is timed); each
section of ``make bench`` still runs, briefly, and prints its figures."""

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
    assert names == ["serializer", "retrieve", "fanout", "distinct"]
    watches = result.stdout.strip().splitlines()[-2]
    assert watches.startswith("watches: one change for 20 watchers"), watches
    assert watches.endswith("(unchecked)"), watches
    assert all(float(part.split("=")[1]) > 0 for part in last.split(": ", 1)[1].split())


def run_bench(*args: str, timeout: float = 180) -> tuple[str, dict[str, str]]:
    """``python -m bench <args>``: its output, and the figures of its last line."""
    result = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("ratios: "), last
    return result.stdout, dict(part.split("=") for part in last.split()[1:])


def assert_numbers(figures: dict[str, str], *names: str) -> None:
    """Each of ``names`` is printed with a positive number (not ``n/a``)."""
    for name in names:
        assert float(figures[name]) > 0, (name, figures[name])


#: A short closed loop: one round of a fraction of a second, 5 connections.
BRIEF = ["--servers", "daphne", "--reps", "1", "--seconds", "0.3", "--warmup", "0.1"]
BRIEF += ["--conns", "5"]


def test_retrieve_section_runs_and_prints_its_ratios():
    out, figures = run_bench("--only", "retrieve", *BRIEF)
    assert "1. Retrieve round trip" in out
    assert_numbers(
        figures, "retrieve_1", "retrieve_50", "vs_dcrf_50", "retrieve_vs_echo_50"
    )


def test_changes_section_runs_and_prints_its_figures():
    """A second of commits to 5 watchers of 10 rows, from one writer process
    (Redis layer) and from the serving process (in-memory layer): every watcher
    ends with every row's last state, and both figures are printed."""
    out, figures = run_bench(
        *["--only", "changes", "--changes-seconds", "1", "--changes-watchers", "5"],
        *["--changes-rows", "10", "--changes-writers", "1"],
        *["--changes-in-process", "memory", "--changes-rates", "300"],
    )
    assert "5. Sustained changes" in out
    assert float(figures["changes_per_s"]) > 0  # not "lost" or "lagging"
    assert float(figures["groupsend_100_per_s"]) > 0


def test_list_and_search_section_runs_and_prints_its_ratios():
    out, figures = run_bench("--only", "list", *BRIEF)
    assert "6. List and search" in out
    assert_numbers(figures, "list_50", "search_50")


def test_write_section_runs_and_pushes_to_its_watchers():
    """Updates from 5 logged-in sockets, 2 watchers: both stacks' watchers got
    pushes (the updates were written and announced)."""
    out, figures = run_bench("--only", "write", *BRIEF, "--write-watchers", "2")
    assert_numbers(figures, "write_50")
    rows = out.split("7. Updates")[1].split("\n\n")[1].splitlines()[2:]
    assert len(rows) == 2, rows
    assert all(float(row.split()[-1]) > 0 for row in rows), rows


def test_http_section_runs_and_prints_its_ratio():
    out, figures = run_bench("--only", "http", *BRIEF, "--http-conns", "3")
    assert "8. HTTP/1.1 GET" in out
    assert_numbers(figures, "http_vs_drf")


def test_distinct_fanout_section_runs_and_prints_its_ratio():
    """20 watchers as 20 users, then as one: every watcher got every change."""
    out, figures = run_bench(
        "--only", "distinct", "--distinct", "20", "--fanout-reps", "1"
    )
    assert "9. One save to 20 watchers" in out
    assert_numbers(figures, "fanout_distinct_1000_vs_1")


def test_idle_sections_run_and_print_their_figures():
    """``idle_kb_10k`` is a difference and may be negative: a number, not n/a."""
    _, figures = run_bench(
        *["--only", "idle,idle10k", "--servers", "daphne", "--reps", "1"],
        *["--idle", "20", "--idle-many", "300"],
    )
    for name in ("idle_kb_over_channels", "idle_kb_10k"):
        float(figures[name])

"""``make bench``: start each server under test, drive it, print the table.

Every server is a real process (daphne, and uvicorn as a second row) on a free port
of 127.0.0.1, serving :mod:`bench.project` with one stack (``BENCH_STACK``); the load
client (:mod:`bench.client`) runs in another process. Each figure is the median of
its repetitions, with the minimum and maximum. The machine may be shared: compare
the ratios of one run, never absolute figures across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.servers import free_port, redis_server, server_command, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
APP = "bench.project.asgi:application"

RETRIEVE_STACKS = {
    "binding": "channels-binding",
    "hand": "hand-written consumer",
    "dcrf": "DCRF retrieve",
    "echo": "raw Channels echo",
}
FANOUT_STACKS = {
    "binding": "channels-binding",
    "groupsend": "bare group_send",
    "dcrf_observer": "DCRF model_observer",
    "dcrf_instance": "DCRF subscribe_instance",
}
CHANGES_STACKS = {"binding": "channels-binding", "groupsend": "bare group_send"}
IDLE_STACKS = {"binding": "channels-binding", "idle": "bare Channels consumer"}


# -- processes --------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.db = workdir / "bench.sqlite3"
        self.redis_url: str | None = None
        self.started = time.monotonic()
        self.logs = 0

    def env(self, stack: str, redis: bool = False, count_queries: bool = False):
        env = dict(os.environ)
        env.pop("BENCH_REDIS_URL", None)
        env.update(
            DJANGO_SETTINGS_MODULE="bench.project.settings",
            BENCH_STACK=stack,
            BENCH_DB=str(self.db),
            PYTHONPATH=str(ROOT),
        )
        if redis:
            env["BENCH_REDIS_URL"] = self.redis_url
        if count_queries:
            env["BENCH_COUNT_QUERIES"] = "1"
        return env

    def prepare(self) -> None:
        env = self.env("binding")
        env["BENCH_PRODUCTS"] = "100"
        subprocess.run(
            [sys.executable, "-m", "bench.project.prepare"],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=120,
        )

    @contextlib.contextmanager
    def server(self, server: str, stack: str, **env_options):
        """Yield ``(port, pid)`` of a fresh server process serving ``stack``."""
        port = free_port()
        self.logs += 1
        log_path = self.workdir / f"{self.logs:02d}-{server}-{stack}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *server_command(server, port, APP, quiet=True)],
                env=self.env(stack, **env_options),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for_port(port, process)
                # The first request sets up Django's HTTP side.
                http_json(f"http://127.0.0.1:{port}/bench/queries/")
                yield port, process.pid
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if process.returncode not in (0, -15) and self.args.verbose:
            self.say(f"server log: {log_path}")

    def client(self, case: str, timeout: float, **opts) -> dict:
        opts["timeout"] = timeout
        result = subprocess.run(
            [sys.executable, "-m", "bench.client", case, json.dumps(opts)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout + 15,
        )
        if result.returncode != 0:
            tail = result.stderr.strip().splitlines()[-1:] or ["(no output)"]
            raise RuntimeError(f"load client failed: {tail[0]}")
        return json.loads(result.stdout)

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed // 60:.0f}:{elapsed % 60:04.1f}] {text}", file=sys.stderr)

    # -- the four measurements -----------------------------------------------------

    def retrieve(self) -> dict:
        """Every stack of one server kind runs at once, in processes of its own;
        the client measures them in turn, round after round."""
        args, results = self.args, {}
        for server in args.servers:
            with contextlib.ExitStack() as running:
                targets = []
                for stack in RETRIEVE_STACKS:
                    port, _ = running.enter_context(self.server(server, stack))
                    url = f"ws://127.0.0.1:{port}/ws/"
                    targets.append({"name": stack, "proto": stack, "url": url})
                rounds = args.reps * len(targets) * (args.seconds + args.warmup)
                for conns in (1, args.conns):
                    try:
                        out = self.client(
                            "retrieve",
                            timeout=60 + 2 * rounds,
                            targets=targets,
                            conns=conns,
                            seconds=args.seconds,
                            warmup=args.warmup,
                            reps=args.reps,
                        )
                    except Exception as exc:
                        self.say(f"retrieve {server} {conns} conn: {exc}")
                        continue
                    for stack, reps in out.items():
                        results[server, stack, conns] = reps
                        rates = [rep["rate"] for rep in reps]
                        self.say(
                            f"retrieve {server} {stack} {conns} conn: "
                            f"{spread(rates, '{:.0f}')} msgs/s"
                        )
        return results

    def fanout(self) -> dict:
        args, results = self.args, {}
        sizes = sorted({1, 100, args.watchers})
        layers = ["memory"] + (["redis"] if self.redis_url else [])
        for layer in layers:
            # Redis on the first server only: the run must stay under 10 minutes.
            servers = (
                args.fanout_servers[:1] if layer == "redis" else args.fanout_servers
            )
            for server in servers:
                for stack in FANOUT_STACKS:
                    slow = stack == "dcrf_instance"
                    reps = {str(size): args.reps for size in sizes}
                    if not slow:
                        reps[str(args.watchers)] = args.fanout_reps
                    key = (layer, server, stack)
                    try:
                        with self.server(
                            server, stack, redis=layer == "redis", count_queries=True
                        ) as (port, _):
                            out = self.client(
                                "fanout",
                                timeout=240,
                                url=f"ws://127.0.0.1:{port}/ws/",
                                http=f"http://127.0.0.1:{port}",
                                proto=stack,
                                sizes=sizes,
                                reps=reps,
                            )
                        results[key] = out["sizes"]
                        last = [r["last"] * 1000 for r in out["sizes"][str(sizes[-1])]]
                        self.say(
                            f"fan-out {layer} {server} {stack} {sizes[-1]} watchers: "
                            f"{spread(last, '{:.0f}')} ms to the last delivery"
                        )
                    except Exception as exc:
                        results[key] = None
                        self.say(f"fan-out {layer} {server} {stack}: {exc}")
        return results

    def changes(self) -> dict:
        """100 watchers of a daphne process; the changes come either from
        separate writer processes (:mod:`bench.writer`, Redis layer: the headline)
        or from a view of that daphne itself (in-process rows), for
        ``--changes-seconds``, as fast as they can."""
        args, results = self.args, {}
        wal(self.db)
        runs = []
        if self.redis_url:
            runs += [
                ("redis", "binding", n, rate)
                for n in args.changes_writers
                for rate in args.changes_rates
            ]
        for layer in args.changes_in_process:
            if layer == "redis" and not self.redis_url:
                continue
            runs += [(layer, stack, 0, 0) for stack in CHANGES_STACKS]
        for layer, stack, writers, rate in runs:
            label = f"changes {layer} {stack} {writer_label(writers, rate)}"
            reps = []
            for _ in range(args.changes_reps):
                redis = layer == "redis"
                writer_envs = [self.env(stack, redis=True)] * writers
                try:
                    with self.server("daphne", stack, redis=redis) as (port, _):
                        out = self.client(
                            "changes",
                            timeout=args.changes_seconds + 120,
                            url=f"ws://127.0.0.1:{port}/ws/",
                            http=f"http://127.0.0.1:{port}",
                            proto=stack,
                            watchers=args.changes_watchers,
                            rows=args.changes_rows,
                            seconds=args.changes_seconds,
                            writers=writer_envs,
                            rate=rate,
                        )
                except Exception as exc:
                    self.say(f"{label}: {exc}")
                    continue
                reps.append(out)
                self.say(
                    f"{label}: "
                    f"{committed_rate(out):.0f} committed/s, "
                    f"{delivered_rate(out):.0f} frames/s a watcher, lag mid "
                    f"{ms(out['lag_mid_second'])} ms, last second "
                    f"{ms(out['lag_last_second'])} ms, "
                    f"{'sustained' if sustained(out) else 'NOT sustained'}"
                )
            results[layer, stack, writers, rate] = reps or None
        return results

    def idle(self) -> dict:
        args, results = self.args, {}
        for server in args.servers:
            for stack in IDLE_STACKS:
                per_conn = []
                for _ in range(args.reps):
                    try:
                        with self.server(server, stack) as (port, pid):
                            out = self.client(
                                "idle",
                                timeout=120,
                                url=f"ws://127.0.0.1:{port}/ws/",
                                proto=stack,
                                pid=pid,
                                conns=args.idle,
                            )
                        per_conn.append(
                            (out["after_kb"] - out["base_kb"]) / out["conns"]
                        )
                    except Exception as exc:
                        self.say(f"idle {server} {stack}: {exc}")
                results[(server, stack)] = per_conn or None
                self.say(
                    f"idle {server} {stack}: {spread(per_conn, '{:.1f}')} KB/connection"
                )
        return results


def wal(db: Path) -> None:
    """Put the SQLite file in WAL mode (it stays so): readers (the serving
    process reading changed rows back) then never wait for the writers."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def writer_label(writers: int, rate: float = 0) -> str:
    if not writers:
        return "in daphne"
    pace = f"{rate:,.0f}/s" if rate else "flat out"
    return f"{writers} writer process{'es' * (writers > 1)}, {pace}"


def http_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


# -- reporting --------------------------------------------------------------------


def median(values):
    return statistics.median(values) if values else None


def spread(values, fmt: str) -> str:
    """``median (min-max)``."""
    if not values:
        return "failed"
    mid = fmt.format(median(values))
    if len(values) == 1:
        return mid
    return f"{mid} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def ratio(a, b, digits: int = 2) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{digits}f}"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [title, ""]
    for row in [header, ["-" * w for w in widths], *rows]:
        lines.append(
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def retrieve_table(results: dict, args) -> str:
    rows = []
    for server in args.servers:
        for stack, label in RETRIEVE_STACKS.items():
            row = [server, label]
            for conns in (1, args.conns):
                reps = results.get((server, stack, conns))
                if not reps:
                    row += ["failed", "", ""]
                    continue
                row.append(spread([r["rate"] for r in reps], "{:.0f}"))
                row.append(f"{median([r['p50_ms'] for r in reps]):.2f}")
                row.append(f"{median([r['p99_ms'] for r in reps]):.2f}")
            rows.append(row)
    n = args.conns
    header = [
        "server",
        "stack",
        "1 conn msgs/s",
        "p50 ms",
        "p99 ms",
        f"{n} conns msgs/s",
        "p50 ms",
        "p99 ms",
    ]
    title = (
        f"1. Retrieve round trip: replies/s, median (min-max) of {args.reps} x "
        f"{args.seconds:g} s; latency: median of the repetitions' p50 and p99"
    )
    return table(title, header, rows)


def fanout_rows(results: dict, args) -> tuple[str, str]:
    rows, query_rows = [], []
    sizes = sorted({1, 100, args.watchers})
    for (layer, server, stack), by_size in results.items():
        label = FANOUT_STACKS[stack]
        if by_size is None:
            rows.append([layer, server, label, "", "failed", "", ""])
            continue
        for size in sizes[1:]:
            reps = by_size[str(size)]
            last = [r["last"] * 1000 for r in reps]
            first = [r["first"] * 1000 for r in reps]
            rows.append(
                [
                    layer,
                    server,
                    label,
                    str(size),
                    spread(last, "{:.0f}"),
                    f"{median(first):.0f}",
                    f"{size / (median(last) / 1000):,.0f}",
                ]
            )
        if layer == "memory":
            counts = [median([r["queries"] for r in by_size[str(s)]]) for s in sizes]
            query_rows.append([server, label] + [f"{c:g}" for c in counts])
    title = (
        "2. One save fanned out: ms from just before save() to the last (and first) "
        "delivery, median (min-max); deliveries/s = watchers / median time to the last"
    )
    header = ["layer", "server", "stack", "watchers", "save->last ms", "first ms"]
    fan = table(title, header + ["deliveries/s"], rows)
    qtitle = (
        "3. Database queries per change, in the server process (in-memory layer; "
        "the saving view's own SELECT and UPDATE not counted)"
    )
    qheader = ["server", "stack"] + [f"{s} watcher{'s' * (s > 1)}" for s in sizes]
    return fan, table(qtitle, qheader, query_rows)


def committed_rate(out: dict) -> float:
    """Changes committed per second by the writer."""
    return out["changes"] / out["seconds"]


def delivered_rate(out: dict) -> float:
    """Frames per second a watcher got (the median watcher), from the first
    commit to the last frame."""
    if not out["last_frame"]:
        return 0.0
    return median(out["frames"]) / (out["last_frame"] - out["started"])


#: The most a change may take to reach every watcher in a sustained run: the
#: time issue 15 gives a resync to repair a loss.
MAX_LAG = 2.0
#: How much worse the last second may be than the middle one: a hub that falls
#: behind lags about twice as much at the end of a run as in its middle.
LAG_GROWTH = 0.5


def sustained(out: dict) -> bool:
    """Every watcher ended with the last state of every row, no change took more
    than ``MAX_LAG`` to reach them all, and the lag did not grow: the changes of
    the last second were not ``LAG_GROWTH`` later than those of the middle one."""
    mid, last = out.get("lag_mid_second"), out.get("lag_last_second")
    return (
        out["complete_after"] is not None
        and not out.get("wrong_final")
        and out["lag_max"] is not None
        and out["lag_max"] <= MAX_LAG
        and mid is not None
        and last is not None
        and last <= mid + LAG_GROWTH
    )


def ms(value) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def changes_table(results: dict, args) -> str:
    rows = []
    for (layer, stack, writers, rate), reps in results.items():
        label = [layer, writer_label(writers, rate), CHANGES_STACKS[stack]]
        if not reps:
            rows.append(label + ["failed"] + [""] * 9)
            continue
        for out in reps:
            rows.append(
                label
                + [
                    f"{committed_rate(out):,.0f}",
                    f"{delivered_rate(out):,.0f}",
                    f"{out['lost_changes']:,}",
                    f"{out.get('wrong_final', 0):,}",
                    ms(out["lag_p50"]),
                    ms(out["lag_p99"]),
                    ms(out["lag_max"]),
                    ms(out.get("lag_mid_second")),
                    ms(out.get("lag_last_second")),
                    "yes" if sustained(out) else "no",
                ]
            )
    title = (
        f"5. Sustained changes: saves of {args.changes_rows} rows (picked at random "
        "by separate writer processes, or in turn by a view of the serving daphne), "
        f"each its own transaction, for {args.changes_seconds:g} s at the rate "
        f"shown (flat out: as fast as they can), to {args.changes_watchers} "
        "watchers of every row on one daphne; lag: "
        "from the commit to a push of that state (or a later one) at the last "
        "watcher; mid: the worst lag of the changes of the middle second; "
        f"sustained: all delivered, none later than {MAX_LAG:g} s, the last "
        f"second's lag within {LAG_GROWTH:g} s of the middle one's"
    )
    header = [
        "layer",
        "writes from",
        "stack",
        "committed/s",
        "frames/s a watcher",
        "changes lost",
        "wrong final",
        "lag p50 ms",
        "p99 ms",
        "max ms",
        "mid ms",
        "last s ms",
        "sustained",
    ]
    return table(title, header, rows)


def changes_ratios(changes: dict, args) -> list[tuple[str, str]]:
    """``changes_per_s``: the most changes per second committed by separate
    writer processes (the most configured, Redis layer, any paced rate or flat
    out) in a run that sustained them (see :func:`sustained`; ``lost`` if a run
    did not end state-complete, ``lagging`` if none kept its lag within a
    second); ``groupsend_100_per_s``: frames per second a socket got from bare
    ``group_send`` (in-memory layer, sent from the serving process)."""
    writers = max(args.changes_writers, default=0)
    runs = [
        reps or []
        for (layer, stack, count, _), reps in changes.items()
        if (layer, stack, count) == ("redis", "binding", writers)
    ]
    ours = [out for reps in runs for out in reps]
    bare = changes.get(("memory", "groupsend", 0, 0)) or []
    if not ours:
        per_s = "n/a"
    elif any(out["complete_after"] is None or out.get("wrong_final") for out in ours):
        per_s = "lost"
    else:
        rates = [
            median([committed_rate(out) for out in reps])
            for reps in runs
            if reps and all(sustained(out) for out in reps)
        ]
        per_s = f"{max(rates):.0f}" if rates else "lagging"
    groupsend = (
        f"{median([delivered_rate(out) for out in bare]):.0f}" if bare else "n/a"
    )
    return [("changes_per_s", per_s), ("groupsend_100_per_s", groupsend)]


def idle_table(results: dict, args) -> str:
    rows = []
    for (server, stack), per_conn in results.items():
        rows.append([server, IDLE_STACKS[stack], spread(per_conn, "{:.1f}")])
    title = (
        f"4. Memory per idle connection: server RSS delta over {args.idle} "
        f"connections / {args.idle}, median (min-max) of {args.reps} fresh servers"
    )
    return table(title, ["server", "stack", "KB per connection"], rows)


def ratios_line(retrieve: dict, fanout: dict, idle: dict, changes: dict, args) -> str:
    server, layer, n = args.servers[0], "memory", args.conns
    fan_server = args.fanout_servers[0]

    def rate(stack, conns):
        reps = retrieve.get((server, stack, conns))
        return median([r["rate"] for r in reps]) if reps else None

    def last(stack, size=args.watchers):
        by_size = fanout.get((layer, fan_server, stack))
        return median([r["last"] for r in by_size[str(size)]]) if by_size else None

    def queries(size):
        by_size = fanout.get((layer, fan_server, "binding"))
        return median([r["queries"] for r in by_size[str(size)]]) if by_size else None

    ours = median(idle.get((server, "binding")) or [])
    bare = median(idle.get((server, "idle")) or [])
    idle_over = "n/a" if ours is None or bare is None else f"{ours - bare:.1f}"
    parts = [
        ("retrieve_1", ratio(rate("binding", 1), rate("hand", 1))),
        ("retrieve_50", ratio(rate("binding", n), rate("hand", n))),
        ("vs_dcrf_50", ratio(rate("binding", n), rate("dcrf", n))),
        ("fanout_vs_groupsend", ratio(last("binding"), last("groupsend"))),
        ("fanout_vs_dcrf_observer", ratio(last("binding"), last("dcrf_observer"))),
        ("dcrf_instance_vs_fanout", ratio(last("dcrf_instance"), last("binding"))),
        ("queries_1000_vs_1", ratio(queries(args.watchers), queries(1))),
        ("idle_kb_over_channels", idle_over),
        *changes_ratios(changes, args),
    ]
    return "ratios: " + " ".join(f"{name}={value}" for name, value in parts)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument(
        "--fanout-servers",
        default="daphne,uvicorn",
        help="servers for the fan-out cases; the Redis layer runs on the first only",
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fanout-reps", type=int, default=5)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--changes-seconds", type=float, default=8.0)
    parser.add_argument("--changes-watchers", type=int, default=100)
    parser.add_argument("--changes-rows", type=int, default=100)
    parser.add_argument("--changes-reps", type=int, default=1)
    parser.add_argument(
        "--changes-writers",
        default="2",
        help="writer processes of the headline runs (Redis layer), e.g. 1,2",
    )
    parser.add_argument(
        "--changes-in-process",
        default="memory,redis",
        help="layers of the runs whose writer is a view of the serving daphne",
    )
    parser.add_argument(
        "--changes-rates",
        default="1000,2000,0",
        help="total commits/s of the writer processes, 0 for flat out, e.g. 1000,0",
    )
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument(
        "--only", default="retrieve,fanout,changes,idle", help="sections to run"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.servers = args.servers.split(",")
    args.fanout_servers = args.fanout_servers.split(",")
    args.only = set(args.only.split(","))
    args.changes_writers = [int(n) for n in args.changes_writers.split(",") if n]
    args.changes_in_process = [x for x in args.changes_in_process.split(",") if x]
    args.changes_rates = [float(x) for x in args.changes_rates.split(",") if x]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    retrieve, fanout, changes, idle = {}, {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="cb-bench-", dir=base) as tmp:
        bench = Bench(args, Path(tmp))
        bench.say(f"database and logs in {tmp}")
        bench.prepare()
        with contextlib.ExitStack() as stack:
            if args.only & {"fanout", "changes"} and not args.no_redis:
                bench.redis_url = stack.enter_context(redis_server(Path(tmp)))
            if "retrieve" in args.only:
                retrieve = bench.retrieve()
            if "fanout" in args.only:
                fanout = bench.fanout()
            if "changes" in args.only:
                changes = bench.changes()
        if "idle" in args.only:
            idle = bench.idle()
        elapsed = time.monotonic() - bench.started
    print()
    print(machine())
    if retrieve:
        print(retrieve_table(retrieve, args))
    if fanout:
        fan, queries = fanout_rows(fanout, args)
        print(fan)
        print(queries)
    if changes:
        print(changes_table(changes, args))
    if idle:
        print(idle_table(idle, args))
    print(f"run time: {elapsed:.0f} s")
    print(ratios_line(retrieve, fanout, idle, changes, args))
    return 0


def machine() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    import channels
    import django
    import rest_framework

    def version(name: str) -> str:
        # DCRF is the bench extra's alone: ``--only changes`` runs without it.
        try:
            return installed(name)
        except PackageNotFoundError:
            return "(not installed)"

    memory = "?"
    with contextlib.suppress(OSError):
        with open("/proc/meminfo") as meminfo:
            memory = f"{int(meminfo.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPUs, {memory}; load average {load}\n"
        f"Python {sys.version.split()[0]}, Django {django.__version__}, "
        f"channels {channels.__version__}, DRF {rest_framework.__version__}, "
        f"daphne {version('daphne')}, uvicorn {version('uvicorn')}, "
        f"channels-redis {version('channels-redis')}, "
        f"djangochannelsrestframework {version('djangochannelsrestframework')}, "
        f"websockets {version('websockets')}\n"
    )

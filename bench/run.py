"""``make bench``: start each server under test, drive it, print the tables.

Every server is a real process (daphne, and uvicorn as a second row) on a free port
of 127.0.0.1, serving :mod:`bench.project` with one stack (``BENCH_STACK``); the load
client (:mod:`bench.client`) runs in another process. Each figure is the median of
its repetitions, with the minimum and maximum (:mod:`bench.report`). The machine
may be shared: compare the ratios of one run, never absolute figures across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.client import http_json, raise_fd_limit
from bench.report import (
    CHANGES_STACKS,
    FANOUT_STACKS,
    HTTP_STACKS,
    IDLE_STACKS,
    REQUEST_STACKS,
    RETRIEVE_STACKS,
    changes_table,
    committed_rate,
    delivered_rate,
    distinct_table,
    fanout_rows,
    goals_table,
    idle_table,
    machine,
    ms,
    ratios,
    ratios_line,
    requests_table,
    retrieve_table,
    spread,
    sustained,
    writer_label,
)
from tests.servers import free_port, redis_server, server_command, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
APP = "bench.project.asgi:application"
#: The HTTP routes of each stack of section 8: channels-binding's REST routes, and
#: the DRF view set (``bench/project/catalog/rest.py``) of the ``hand`` stack.
HTTP_PATHS = {
    "binding": {
        "retrieve": "/api/catalog/Product/{pk}/",
        "list": "/api/catalog/Product/?page={page}",
    },
    "hand": {"retrieve": "/drf/products/{pk}/", "list": "/drf/products/?page={page}"},
}
#: Every section, in the order they run (``--only``).
SECTIONS = (
    "retrieve",
    "list",
    "http",
    "fanout",
    "distinct",
    "write",
    "changes",
    "idle",
    "idle10k",
)


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
        # Logged-in users: the writers of section 7, the watchers of section 9.
        env["BENCH_USERS"] = str(max(self.args.conns, self.args.distinct))
        subprocess.run(
            [sys.executable, "-m", "bench.project.prepare"],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=120,
        )

    @contextlib.contextmanager
    def server(self, server: str, stack: str, files: int = 0, **env_options):
        """Yield ``(port, pid)`` of a fresh server process serving ``stack``,
        allowed to open ``files`` files (sockets) if given."""
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
                preexec_fn=(lambda: raise_fd_limit(files)) if files else None,
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

    # -- the measurements ----------------------------------------------------------

    def closed_loops(self, server: str, stacks, runs, http: bool = False) -> dict:
        """Every stack runs at once, in a ``server`` process of its own; for each
        ``(key, client options)`` of ``runs``, the client measures them in turn,
        round after round. Returns ``{(*key, stack): repetitions}``."""
        args, results = self.args, {}
        with contextlib.ExitStack() as running:
            targets = []
            for stack in stacks:
                port, _ = running.enter_context(self.server(server, stack))
                scheme = "http" if http else "ws"
                url = f"{scheme}://127.0.0.1:{port}/{'' if http else 'ws/'}"
                target = {"name": stack, "proto": stack, "url": url}
                targets.append({**target, **HTTP_PATHS[stack]} if http else target)
            for key, opts in runs:
                opts = {"seconds": args.seconds, "warmup": args.warmup, **opts}
                label = f"{server} {'HTTP ' * http}{key[0]} {opts['conns']} conn"
                rounds = args.reps * len(targets) * (opts["seconds"] + opts["warmup"])
                try:
                    out = self.client(
                        "requests",
                        timeout=60 + 2 * rounds,
                        targets=targets,
                        reps=args.reps,
                        http=http,
                        **opts,
                    )
                except Exception as exc:
                    self.say(f"{label}: {exc}")
                    continue
                for stack, reps in out.items():
                    results[(*key, stack)] = reps
                    rates = [rep["rate"] for rep in reps]
                    self.say(f"{label} {stack}: {spread(rates, '{:.0f}')} replies/s")
        return results

    def retrieve(self) -> dict:
        """Section 1: ``{(server, conns, stack): repetitions}``."""
        results = {}
        for server in self.args.servers:
            runs = [
                (("retrieve", conns), {"conns": conns})
                for conns in (1, self.args.conns)
            ]
            found = self.closed_loops(server, RETRIEVE_STACKS, runs)
            results.update({(server, *key[1:]): reps for key, reps in found.items()})
        return results

    def lists(self) -> dict:
        """Section 6: a page of 25 rows, listed and searched."""
        runs = [
            ((action,), {"conns": self.args.conns, "action": action})
            for action in ("list", "search")
        ]
        return self.closed_loops(self.args.servers[0], REQUEST_STACKS, runs)

    def write(self) -> dict:
        """Section 7: updates from logged-in sockets, each pushed to watchers."""
        args = self.args
        wal(self.db)
        opts = {"conns": args.conns, "action": "update", "users": args.conns}
        opts["watchers"] = args.write_watchers
        return self.closed_loops(args.servers[0], REQUEST_STACKS, [(("update",), opts)])

    def http(self) -> dict:
        """Section 8: retrieve and list over keep-alive HTTP/1.1."""
        args = self.args
        runs = [
            ((action,), {"conns": args.http_conns, "action": action})
            for action in ("retrieve", "list")
        ]
        return self.closed_loops(args.servers[0], HTTP_STACKS, runs, http=True)

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

    def distinct(self) -> dict:
        """Section 9: ``{users: repetitions}``, the watchers logged in as
        ``--distinct`` users (a visibility key each), then as one."""
        args, results = self.args, {}
        size = args.distinct
        for users in (args.distinct, 1):
            try:
                with self.server("daphne", "users", count_queries=True) as (port, _):
                    out = self.client(
                        "fanout",
                        timeout=240,
                        url=f"ws://127.0.0.1:{port}/ws/",
                        http=f"http://127.0.0.1:{port}",
                        proto="users",
                        users=users,
                        sizes=[size],
                        reps={str(size): args.fanout_reps},
                    )
            except Exception as exc:
                results[users] = None
                self.say(f"fan-out to {size} watchers as {users} users: {exc}")
                continue
            results[users] = out["sizes"][str(size)]
            last = [r["last"] * 1000 for r in results[users]]
            self.say(
                f"fan-out to {size} watchers as {users} user{'s' * (users > 1)}: "
                f"{spread(last, '{:.0f}')} ms to the last delivery"
            )
        return results

    def idle(self, servers: list[str], conns: int, reps: int) -> dict:
        """Sections 4 and 10: KB per idle connection, per ``(server, stack)``.
        The stacks' servers run at once, each with a client process of its own:
        memory is per process, and the bare consumer is slow to connect to
        (``InMemoryChannelLayer`` walks every channel for each new one)."""
        results = {(server, stack): [] for server in servers for stack in IDLE_STACKS}
        for server, _ in itertools.product(servers, range(reps)):
            with contextlib.ExitStack() as running:
                pids = {
                    stack: running.enter_context(
                        self.server(server, stack, files=conns + 200)
                    )
                    for stack in IDLE_STACKS
                }
                with ThreadPoolExecutor(len(pids)) as pool:
                    outs = {
                        stack: pool.submit(
                            self.client,
                            "idle",
                            timeout=120 + conns / 50,
                            url=f"ws://127.0.0.1:{port}/ws/",
                            proto=stack,
                            pid=pid,
                            conns=conns,
                            files=conns + 200,
                        )
                        for stack, (port, pid) in pids.items()
                    }
                    for stack, out in outs.items():
                        try:
                            out = out.result()
                        except Exception as exc:
                            self.say(f"idle {server} {stack} {conns} conns: {exc}")
                            continue
                        per_conn = (out["after_kb"] - out["base_kb"]) / out["conns"]
                        results[server, stack].append(per_conn)
        for (server, stack), per_conn in results.items():
            self.say(
                f"idle {server} {stack} {conns} conns: "
                f"{spread(per_conn, '{:.1f}')} KB/connection"
            )
        return {key: per_conn or None for key, per_conn in results.items()}


def wal(db: Path) -> None:
    """Put the SQLite file in WAL mode (it stays so): readers (the serving
    process reading changed rows back) then never wait for the writers."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument(
        "--fanout-servers",
        default="daphne,uvicorn",
        help="servers for the fan-out cases; the Redis layer runs on the first only",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="each closed loop (sections 1, 6, 7, 8), after --warmup",
    )
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fanout-reps", type=int, default=5)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument(
        "--idle-many",
        type=int,
        default=10_000,
        help="the idle connections of section 10 (the first server only)",
    )
    parser.add_argument("--idle-many-reps", type=int, default=1)
    parser.add_argument(
        "--write-watchers",
        type=int,
        default=10,
        help="sockets watching every product while section 7 updates them",
    )
    parser.add_argument(
        "--http-conns", type=int, default=50, help="keep-alive HTTP connections"
    )
    parser.add_argument(
        "--distinct",
        type=int,
        default=1000,
        help="watchers of section 9, each logged in as its own user",
    )
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
        "--only", default=",".join(SECTIONS), help="sections to run, of those"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.servers = args.servers.split(",")
    args.fanout_servers = args.fanout_servers.split(",")
    args.only = set(args.only.split(","))
    if args.only - set(SECTIONS):
        parser.error(f"--only: unknown sections {', '.join(args.only - set(SECTIONS))}")
    args.changes_writers = [int(n) for n in args.changes_writers.split(",") if n]
    args.changes_in_process = [x for x in args.changes_in_process.split(",") if x]
    args.changes_rates = [float(x) for x in args.changes_rates.split(",") if x]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    results: dict[str, dict] = {name: {} for name in SECTIONS}
    with tempfile.TemporaryDirectory(prefix="cb-bench-", dir=base) as tmp:
        bench = Bench(args, Path(tmp))
        bench.say(f"database and logs in {tmp}")
        bench.prepare()
        sections = {
            "retrieve": bench.retrieve,
            "list": bench.lists,
            "http": bench.http,
            "fanout": bench.fanout,
            "distinct": bench.distinct,
            "write": bench.write,
            "changes": bench.changes,
            "idle": lambda: bench.idle(args.servers, args.idle, args.reps),
            "idle10k": lambda: bench.idle(
                args.servers[:1], args.idle_many, args.idle_many_reps
            ),
        }
        with contextlib.ExitStack() as stack:
            if args.only & {"fanout", "changes"} and not args.no_redis:
                bench.redis_url = stack.enter_context(redis_server(Path(tmp)))
            for name in SECTIONS:
                if name in args.only:
                    results[name] = sections[name]()
        elapsed = time.monotonic() - bench.started
    print()
    print(machine())
    print(report(results, args))
    parts = ratios(results, args)
    print(goals_table(parts))
    print(f"run time: {elapsed:.0f} s")
    print(ratios_line(parts))
    return 0


def report(results: dict, args) -> str:
    """The table of every section that ran, in the order of their numbers."""
    tables = []
    if results["retrieve"]:
        tables.append(retrieve_table(results["retrieve"], args))
    if results["fanout"]:
        tables.extend(fanout_rows(results["fanout"], args))
    if results["idle"]:
        tables.append(idle_table(results["idle"], args, args.idle))
    if results["changes"]:
        tables.append(changes_table(results["changes"], args))
    n = args.conns
    if results["list"]:
        title = (
            f"6. List and search, a page of 25 rows: replies/s at {n} connections, "
            f"median (min-max) of {args.reps} x {args.seconds:g} s"
        )
        tables.append(requests_table(title, results["list"], REQUEST_STACKS))
    if results["write"]:
        title = (
            f"7. Updates of products 1-50 from {n} logged-in connections while "
            f"{args.write_watchers} more watch every product: replies/s, median "
            f"(min-max) of {args.reps} x {args.seconds:g} s, and the frames each "
            "watcher got"
        )
        tables.append(
            requests_table(title, results["write"], REQUEST_STACKS, pushes=True)
        )
    if results["http"]:
        title = (
            f"8. HTTP/1.1 GET on {args.http_conns} keep-alive connections, "
            f"{args.servers[0]}: replies/s, median (min-max) of {args.reps} x "
            f"{args.seconds:g} s"
        )
        tables.append(requests_table(title, results["http"], HTTP_STACKS))
    if results["distinct"]:
        tables.append(distinct_table(results["distinct"], args))
    if results["idle10k"]:
        tables.append(idle_table(results["idle10k"], args, args.idle_many, number=10))
    return "\n".join(tables)

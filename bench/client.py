"""The load client: ``python -m bench.client <case> <json options>``.

Runs in a process of its own (the servers under test run in theirs), talks to them
on 127.0.0.1 with ``websockets``, and prints one JSON object of raw
measurements on stdout for :mod:`bench.run` to aggregate. Every loop stops after a
bounded count and a bounded time.

Cases:

``retrieve``  closed-loop request/reply on ``conns`` connections: each sends a
              retrieve, waits for its reply, sends the next. Per target and
              repetition: replies per second, and the p50 and p99 latencies.
``fanout``    ``sizes`` watchers of one product; a change is saved through
              ``GET /bench/change/`` and the client waits until every watcher got
              it. Per change: seconds from just before ``save()`` (a timestamp the
              server returns) to the first and the last delivery, and the queries
              the server ran for it (``/bench/queries/`` before and after, less
              the saving view's own).
``changes``   ``watchers`` sockets watch every product (channels-binding: one
              ``list`` each; the ``groupsend`` baseline: its group), then the
              server commits changes for ``seconds`` as fast as it can
              (``GET /bench/write/``: saves of products 1..``rows`` in turn). Per
              run: changes committed, frames each watcher got, whether every
              watcher ends with the last state of every row, and the lag of each
              change (commit to the first push to every watcher that carries it
              or a later state of its row).
``idle``      the RSS of the server process (``pid``) before and after opening
              ``conns`` idle connections.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import sys
import time
import urllib.request
from typing import Any

from websockets.asyncio.client import connect

STREAM = "catalog.Product"
PKS = 50  # retrieves cycle over products 1..PKS
CONNECT_CONCURRENCY = 50
CONNECT_TIMEOUT = 20.0
REPLY_TIMEOUT = 20.0
CHANGE_TIMEOUT = 60.0


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- frames of each protocol ------------------------------------------------------


def retrieve_frame(proto: str, pk: int, request_id: int) -> str:
    if proto == "dcrf":
        return json.dumps({"action": "retrieve", "pk": pk, "request_id": request_id})
    event = f"{STREAM}.retrieve"
    return json.dumps({"event": event, "data": {"id": pk}, "request_id": request_id})


def is_error(proto: str, reply: dict) -> bool:
    if proto == "dcrf":
        return bool(reply.get("errors")) or reply.get("response_status", 200) >= 400
    return "error" in reply


SUBSCRIBE = {
    "binding": {"event": f"{STREAM}.subscribe", "data": {"id": 1}},
    "dcrf_observer": {"action": "subscribe_to_product_activity"},
    "dcrf_instance": {"action": "subscribe_instance", "pk": 1},
}


def is_push(proto: str, frame: dict, value: int) -> bool:
    """Whether ``frame`` delivers the change that set quantity to ``value``."""
    if proto.startswith("dcrf"):
        ok = frame.get("action") == "update" and frame.get("response_status") == 200
    else:
        ok = frame.get("event") == f"{STREAM}.retrieve" and "request_id" not in frame
    data = frame.get("data")
    return ok and isinstance(data, dict) and data.get("quantity") == value


# -- connections ------------------------------------------------------------------


async def open_socket(url: str, proto: str):
    ws = await asyncio.wait_for(
        connect(url, compression=None, ping_interval=None, max_size=2**22),
        CONNECT_TIMEOUT,
    )
    if proto == "binding":
        # The greeting (``connection``) comes first: the connection is set up.
        greeting = json.loads(await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT))
        assert greeting.get("event") == "connection", greeting
    return ws


async def open_sockets(url: str, proto: str, count: int) -> list:
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one():
        async with limit:
            return await open_socket(url, proto)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_sockets(sockets: list) -> None:
    await asyncio.gather(
        *(asyncio.wait_for(ws.close(), 5) for ws in sockets), return_exceptions=True
    )


async def request(ws, proto: str, frame: str, request_id: Any) -> dict:
    """Send ``frame`` and return the reply carrying ``request_id``."""
    await ws.send(frame)
    deadline = time.monotonic() + REPLY_TIMEOUT
    while True:
        text = await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0))
        reply = json.loads(text)
        if reply.get("request_id") == request_id:
            if is_error(proto, reply):
                raise RuntimeError(f"error reply: {text[:300]}")
            return reply


def http_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


# -- retrieve ---------------------------------------------------------------------


async def closed_loop(sockets, proto, seconds, max_requests, ids):
    """Every socket sends a retrieve, waits for its reply, and again, until
    ``seconds`` have passed or ``max_requests`` were sent in all. Returns
    ``(replies, latencies, elapsed seconds)``."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    budget = itertools.count()

    async def worker(ws, offset):
        n = offset
        while time.monotonic() < deadline and next(budget) < max_requests:
            request_id = next(ids)
            frame = retrieve_frame(proto, n % PKS + 1, request_id)
            n += 1
            started = time.perf_counter()
            await request(ws, proto, frame, request_id)
            latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(worker(ws, i) for i, ws in enumerate(sockets)))
    return len(latencies), latencies, time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def run_retrieve(opts: dict) -> dict:
    """Measure every target in turn, ``reps`` rounds, starting each round with the
    next target: a change in the machine's load then hits every target alike."""
    targets, conns, seconds = opts["targets"], opts["conns"], opts["seconds"]
    max_requests = opts.get("max_requests", 200_000)
    ids = itertools.count(1)
    results: dict[str, list] = {target["name"]: [] for target in targets}
    for rep in range(opts["reps"]):
        for target in targets[rep % len(targets) :] + targets[: rep % len(targets)]:
            proto = target["proto"]
            sockets = await open_sockets(target["url"], proto, conns)
            try:
                await closed_loop(sockets, proto, opts["warmup"], max_requests, ids)
                count, latencies, elapsed = await closed_loop(
                    sockets, proto, seconds, max_requests, ids
                )
            finally:
                await close_sockets(sockets)
            results[target["name"]].append(
                {
                    "rate": count / elapsed,
                    "p50_ms": 1000 * percentile(latencies, 0.50),
                    "p99_ms": 1000 * percentile(latencies, 0.99),
                    "count": count,
                }
            )
    return results


# -- fan-out ----------------------------------------------------------------------


class Watchers:
    """Sockets watching product 1, each read by a task of its own that notes when
    the change it waits for arrives."""

    def __init__(self, url: str, proto: str) -> None:
        self.url, self.proto = url, proto
        self.sockets: list = []
        self.tasks: list[asyncio.Task] = []
        self.value: int | None = None
        self.times: list[float] = []
        self.done = asyncio.Event()
        self.stray = 0

    async def grow(self, total: int) -> None:
        wanted = total - len(self.sockets)
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one():
            async with limit:
                ws = await open_socket(self.url, self.proto)
                if self.proto in SUBSCRIBE:
                    frame = dict(SUBSCRIBE[self.proto], request_id="sub")
                    await request(ws, self.proto, json.dumps(frame), "sub")
                return ws

        new = await asyncio.gather(*(one() for _ in range(wanted)))
        for ws in new:
            self.sockets.append(ws)
            self.tasks.append(asyncio.create_task(self.read(ws)))

    async def read(self, ws) -> None:
        async for text in ws:
            frame = json.loads(text)
            if self.value is not None and is_push(self.proto, frame, self.value):
                self.times.append(time.monotonic())
                if len(self.times) == len(self.sockets):
                    self.done.set()
            else:
                self.stray += 1

    async def change(self, http: str, value: int) -> dict:
        self.value, self.times = value, []
        self.done = asyncio.Event()
        before = await asyncio.to_thread(http_json, f"{http}/bench/queries/")
        saved = await asyncio.to_thread(
            http_json, f"{http}/bench/change/?pk=1&value={value}"
        )
        try:
            await asyncio.wait_for(self.done.wait(), CHANGE_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(
                f"{len(self.times)} of {len(self.sockets)} watchers got the change "
                f"within {CHANGE_TIMEOUT} s"
            ) from None
        # Let the server finish what it does after the last delivery, then count.
        await asyncio.sleep(0.2)
        after = await asyncio.to_thread(http_json, f"{http}/bench/queries/")
        self.value = None
        return {
            "first": min(self.times) - saved["t_save"],
            "last": max(self.times) - saved["t_save"],
            "queries": after["queries"] - before["queries"] - saved["queries"],
        }

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await close_sockets(self.sockets)


async def run_fanout(opts: dict) -> dict:
    watchers = Watchers(opts["url"], opts["proto"])
    values = itertools.count(int(time.time()) % 1_000_000 * 1000)
    results: dict[str, list] = {}
    try:
        for size in opts["sizes"]:
            await watchers.grow(size)
            await asyncio.sleep(0.5)  # let the server settle after the connects
            await watchers.change(opts["http"], next(values))  # warm-up
            reps = opts["reps"].get(str(size), 3)
            results[str(size)] = [
                await watchers.change(opts["http"], next(values)) for _ in range(reps)
            ]
        return {"sizes": results, "stray_frames": watchers.stray}
    finally:
        await watchers.close()


# -- sustained changes -----------------------------------------------------------

LIST = {"event": f"{STREAM}.list", "data": {}, "request_id": "list"}
#: How long after the last commit every watcher may take to have the last state.
DRAIN_TIMEOUT = 20.0


async def run_changes(opts: dict) -> dict:
    """Sustained commits to ``watchers`` sockets that all watch every row."""
    proto, rows, seconds = opts["proto"], opts["rows"], opts["seconds"]
    sockets = await open_sockets(opts["url"], proto, opts["watchers"])
    # Per watcher: (arrival, pk, quantity) of every push, in arrival order.
    got: list[list[tuple]] = [[] for _ in sockets]
    # Per watcher: the highest quantity pushed per pk, to tell when it is complete.
    latest: list[dict] = [{} for _ in sockets]
    loads, monotonic = json.loads, time.monotonic

    async def read(ws, pushes, state):
        async for text in ws:
            now = monotonic()
            frame = loads(text)
            data = frame.get("data")
            if "request_id" in frame or not isinstance(data, dict):
                continue
            pk, value = data.get("id"), data.get("quantity")
            if value is None:
                continue
            pushes.append((now, pk, value))
            if value > state.get(pk, -1):
                state[pk] = value

    tasks = []
    try:
        if proto == "binding":
            list_frame = json.dumps(LIST)
            await asyncio.gather(
                *(request(ws, proto, list_frame, "list") for ws in sockets)
            )
        for ws, pushes, state in zip(sockets, got, latest, strict=True):
            tasks.append(asyncio.create_task(read(ws, pushes, state)))
        await asyncio.sleep(0.5)  # let the server settle after the connects
        base = int(time.time()) * 100_000
        if opts.get("writers"):
            written = await write_elsewhere(opts, base)
        else:
            query = f"seconds={seconds}&rows={rows}&base={base}"
            written = await asyncio.to_thread(
                http_json, f"{opts['http']}/bench/write/?{query}"
            )
            count = len(written["times"])
            written["pks"] = [n % rows + 1 for n in range(count)]
            written["values"] = [base + n for n in range(count)]
        changes = sorted(
            zip(written["times"], written["pks"], written["values"], strict=True)
        )
        final = {}
        for _, pk, value in changes:
            final[pk] = max(value, final.get(pk, -1))
        # Wait until every watcher has the last state of every row, or give up.
        deadline = monotonic() + DRAIN_TIMEOUT
        complete = None
        while monotonic() < deadline:
            if all(
                all(state.get(pk, -1) >= value for pk, value in final.items())
                for state in latest
            ):
                complete = monotonic()
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # anything still on its way is counted too
    finally:
        for task in tasks:
            task.cancel()
        await close_sockets(sockets)
    out = summarize_changes(got, changes, written["started"], complete)
    out["writers"] = len(opts.get("writers") or ()) or None
    # The state each watcher ends with: the last push of each row, in arrival
    # order, must carry the row's final quantity.
    out["wrong_final"] = sum(
        ends.get(pk) != value
        for ends in ({pk: v for _, pk, v in pushes} for pushes in got)
        for pk, value in final.items()
    )
    return out


async def write_elsewhere(opts: dict, base: int) -> dict:
    """Run the writer processes (:mod:`bench.writer`): start them, wait until
    each is set up, tell them all to go, and merge what they committed."""
    count, seconds = len(opts["writers"]), opts["seconds"]
    procs = []
    try:
        for number, env in enumerate(opts["writers"]):
            writer_opts = {
                "rows": opts["rows"],
                "writers": count,
                "writer": number,
                "base": base,
                "seed": base + number,
                "rate": (opts.get("rate") or 0) / count,
            }
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.writer",
                    json.dumps(writer_opts),
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        for proc in procs:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"a writer did not start: {line[:200]!r}")
        for proc in procs:
            proc.stdin.write(f"go {seconds}\n".encode())
            await proc.stdin.drain()
        outs = [
            json.loads(out)
            for out, _ in await asyncio.gather(
                *(asyncio.wait_for(proc.communicate(), seconds + 60) for proc in procs)
            )
        ]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    merged = {"started": min(out["started"] for out in outs)}
    for field in ("times", "pks", "values"):
        merged[field] = [item for out in outs for item in out[field]]
    return merged


def summarize_changes(got, changes, started, complete) -> dict:
    """Each change's lag: from its commit to when the last watcher had it (a push
    of its row with its quantity or a later one); ``None`` if one never did.
    ``changes``: ``(commit time, pk, quantity)`` in commit order."""
    import bisect

    count = len(changes)
    times = [t for t, _, _ in changes]
    worst = [0.0] * count  # per change, the lag to the last watcher
    uncovered = 0  # (watcher, change) pairs never covered
    for pushes in got:
        # Per row: arrival times, and the highest quantity seen by then.
        per_row: dict[int, tuple[list, list]] = {}
        for arrival, pk, value in pushes:
            arrivals, values = per_row.setdefault(pk, ([], []))
            if values and value <= values[-1]:
                continue  # an older state than one already pushed
            arrivals.append(arrival)
            values.append(value)
        for n, (committed, pk, value) in enumerate(changes):
            row = per_row.get(pk)
            i = bisect.bisect_left(row[1], value) if row else 0
            if row is None or i == len(row[1]):
                uncovered += 1
                worst[n] = float("inf")
                continue
            lag = row[0][i] - committed
            if lag > worst[n]:
                worst[n] = lag
    last_second = [
        lag for lag, t in zip(worst, times, strict=True) if t > times[-1] - 1
    ]
    middle = started + (times[-1] - started) / 2
    mid_second = [
        lag
        for lag, t in zip(worst, times, strict=True)
        if middle - 0.5 <= t <= middle + 0.5
    ]

    def finite_or_none(value):
        return None if value == float("inf") else value

    frames = [len(pushes) for pushes in got]
    finite = sorted(lag for lag in worst if lag != float("inf"))
    return {
        "changes": count,
        "seconds": times[-1] - started,
        "watchers": len(got),
        "frames": frames,
        "first_frame": min((p[0][0] for p in got if p), default=None),
        "last_frame": max((p[-1][0] for p in got if p), default=None),
        "started": started,
        "complete_after": None if complete is None else complete - times[-1],
        "uncovered": uncovered,
        "lost_changes": sum(lag == float("inf") for lag in worst),
        "lag_p50": percentile(finite, 0.50) if finite else None,
        "lag_p99": percentile(finite, 0.99) if finite else None,
        "lag_max": finite[-1] if finite else None,
        "lag_last": finite_or_none(worst[-1]) if worst else None,
        "lag_last_second": finite_or_none(max(last_second)) if last_second else None,
        "lag_mid_second": finite_or_none(max(mid_second)) if mid_second else None,
    }


# -- idle memory ------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def run_idle(opts: dict) -> dict:
    url, proto, pid = opts["url"], opts["proto"], opts["pid"]
    # Warm up: the first connections import and cache what every later one uses.
    await close_sockets(await open_sockets(url, proto, 50))
    await asyncio.sleep(1.0)
    base = rss_kb(pid)
    sockets = await open_sockets(url, proto, opts["conns"])
    try:
        await asyncio.sleep(1.5)
        after = rss_kb(pid)
    finally:
        await close_sockets(sockets)
    return {"base_kb": base, "after_kb": after, "conns": len(sockets)}


CASES = {
    "retrieve": run_retrieve,
    "fanout": run_fanout,
    "changes": run_changes,
    "idle": run_idle,
}


def main() -> None:
    raise_fd_limit()
    case, opts = sys.argv[1], json.loads(sys.argv[2])
    result = asyncio.run(asyncio.wait_for(CASES[case](opts), opts["timeout"]))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

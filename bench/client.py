"""The load client: ``python -m bench.client <case> <json options>``.

Runs in a process of its own (the servers under test run in theirs), talks to them
on 127.0.0.1 with ``websockets``, and prints one JSON object of raw
measurements on stdout for :mod:`bench.run` to aggregate. Every loop stops after a
bounded count and a bounded time.

Cases:

``requests``  closed-loop request/reply on ``conns`` connections to each of
              ``targets`` in turn: each connection sends a request (``action``:
              ``retrieve``, ``list``, ``search`` or ``update``; logged in as one
              of ``users`` users if given), waits for its reply, sends the next;
              with ``watchers``, that many more sockets watch every product
              meanwhile. With ``http``, keep-alive HTTP/1.1 connections ``GET``
              the target's path for the action instead. Per target and
              repetition: replies per second, the p50 and p99 latencies, and the
              frames per second a watcher got.
``fanout``    ``sizes`` watchers of one product (logged in as ``users`` users
              if given, socket ``i`` as user ``i % users + 1``); a change is saved
              through ``GET /bench/change/`` and the client waits until every
              watcher got it. Per change: seconds from just before ``save()`` (a
              timestamp the server returns) to the first and the last delivery,
              and the queries the server ran for it (``/bench/queries/`` before
              and after, less the saving view's own).
``changes``   ``watchers`` sockets watch every product (channels-binding: one
              ``list`` each; the ``groupsend`` baseline: its group), then the
              server commits changes for ``seconds`` as fast as it can
              (``GET /bench/write/``: saves of products 1..``rows`` in turn). Per
              run: changes committed, frames each watcher got, whether every
              watcher ends with the last state of every row, and the lag of each
              change (commit to the first push to every watcher that carries it
              or a later state of its row).
``idle``      the RSS of the server process (``pid``) before and after opening
              ``conns`` idle connections (``files``: the file limit to raise this
              process's to).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import resource
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

STREAM = "catalog.Product"
#: The ``users`` stack's stream: products through a per-user ``get_queryset()``.
USER_STREAM = "catalog.UserProduct"
PKS = 50  # retrieves and updates cycle over products 1..PKS
PAGES = 4  # lists and searches cycle over pages 1..PAGES of 25 rows
#: A search with a query and a filter (every product matches both).
SEARCH = {"query": "benchmark", "filters": {"in_stock": True}}
CONNECT_CONCURRENCY = 50
CONNECT_TIMEOUT = 20.0
REPLY_TIMEOUT = 20.0
CHANGE_TIMEOUT = 60.0


def raise_fd_limit(wanted: int = 0) -> None:
    """Let this process open ``wanted`` files (sockets), or as many as the hard
    limit allows; a process that may raise the hard limit (root) raises it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return
        except (ValueError, OSError):
            pass  # not allowed: as far as the hard limit goes
    if soft < max(hard, wanted):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def session_key(user: int) -> str:
    """The session key of user ``user`` (its primary key), which
    :mod:`bench.project.prepare` stores logged in."""
    return f"benchsession{user:020d}"


def stream_of(proto: str) -> str:
    return USER_STREAM if proto == "users" else STREAM


# -- frames of each protocol ------------------------------------------------------


def request_frame(proto: str, action: str, n: int, request_id: int) -> str:
    """The ``n``-th request of a connection: ``retrieve`` or ``update`` of product
    ``n % PKS + 1`` (an update sets its quantity to ``request_id``), ``list`` or
    ``search`` of page ``n % PAGES + 1``."""
    pk = n % PKS + 1
    if proto == "dcrf":
        assert action == "retrieve", action
        return json.dumps({"action": "retrieve", "pk": pk, "request_id": request_id})
    if action == "retrieve":
        data = {"id": pk}
    elif action == "update":
        data = {"id": pk, "quantity": request_id}
    else:
        data = {"page": n % PAGES + 1, **(SEARCH if action == "search" else {})}
    event = f"{stream_of(proto)}.{action}"
    return json.dumps({"event": event, "data": data, "request_id": request_id})


def is_error(proto: str, reply: dict) -> bool:
    if proto == "dcrf":
        return bool(reply.get("errors")) or reply.get("response_status", 200) >= 400
    return "error" in reply


SUBSCRIBE = {
    "binding": {"event": f"{STREAM}.subscribe", "data": {"id": 1}},
    "users": {"event": f"{USER_STREAM}.subscribe", "data": {"id": 1}},
    "dcrf_observer": {"action": "subscribe_to_product_activity"},
    "dcrf_instance": {"action": "subscribe_instance", "pk": 1},
}
#: A watcher of every product (channels-binding: a collection subscription; the
#: hand-written consumer: its group).
WATCH_ALL = {"event": f"{STREAM}.subscribe", "data": {}}


def is_push(proto: str, frame: dict, value: int) -> bool:
    """Whether ``frame`` delivers the change that set quantity to ``value``."""
    if proto.startswith("dcrf"):
        ok = frame.get("action") == "update" and frame.get("response_status") == 200
    else:
        event = f"{stream_of(proto)}.retrieve"
        ok = frame.get("event") == event and "request_id" not in frame
    data = frame.get("data")
    return ok and isinstance(data, dict) and data.get("quantity") == value


# -- connections ------------------------------------------------------------------


async def open_socket(url: str, proto: str, user: int | None = None):
    """A websocket to ``url``, logged in as ``user`` (its session cookie) if
    given."""
    headers = {"Cookie": f"sessionid={session_key(user)}"} if user else None
    ws = await asyncio.wait_for(
        connect(
            url,
            compression=None,
            ping_interval=None,
            max_size=2**22,
            additional_headers=headers,
        ),
        CONNECT_TIMEOUT,
    )
    if proto in ("binding", "users"):
        # The greeting (``connection``) comes first: the connection is set up.
        greeting = json.loads(await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT))
        assert greeting.get("event") == "connection", greeting
        assert bool(user) == greeting["data"]["authenticated"], greeting
    return ws


async def open_sockets(
    url: str, proto: str, count: int, users: int = 0, first: int = 0
) -> list:
    """``count`` sockets; with ``users``, socket ``i`` (from ``first``) is logged
    in as user ``i % users + 1``."""
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i):
        async with limit:
            return await open_socket(url, proto, i % users + 1 if users else None)

    return list(await asyncio.gather(*(one(first + i) for i in range(count))))


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


async def ask_all(sockets: list, proto: str, frame: dict) -> None:
    """Send ``frame`` on every socket (a few at a time) and wait for the replies."""
    text = json.dumps(dict(frame, request_id="ask"))
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(ws):
        async with limit:
            await request(ws, proto, text, "ask")

    await asyncio.gather(*(one(ws) for ws in sockets))


def http_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


# -- HTTP/1.1 keep-alive ----------------------------------------------------------


class HTTPConnection:
    """One keep-alive HTTP/1.1 connection, one request at a time: what a load
    balancer or a pooled client keeps open to a server."""

    def __init__(self, url: str) -> None:
        self.url = urlsplit(url)

    async def open(self) -> HTTPConnection:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.url.hostname, self.url.port),
            CONNECT_TIMEOUT,
        )
        return self

    async def get(self, path: str) -> bytes:
        """The body of ``GET path``; anything but a 200 kept alive raises."""
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.url.netloc}\r\n\r\n".encode()
        )
        return await asyncio.wait_for(self.response(path), REPLY_TIMEOUT)

    async def response(self, path: str) -> bytes:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = await self.chunks()
        else:
            raise RuntimeError(f"GET {path}: neither a length nor chunks: {head!r}")
        if status_line.split()[1] != "200" or headers.get("connection") == "close":
            raise RuntimeError(f"GET {path}: {status_line}, {body[:300]!r}")
        return body

    async def chunks(self) -> bytes:
        chunks, readline = [], self.reader.readuntil
        while size := int((await readline(b"\r\n")).split(b";")[0], 16):
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        while await readline(b"\r\n") != b"\r\n":
            pass  # trailers
        return b"".join(chunks)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


# -- closed loops: retrieve, list, search, update; over HTTP retrieve and list ----

#: One request of a connection: called with the connection's request number.
Call = Callable[[int], Awaitable[Any]]


async def closed_loop(calls: list[Call], seconds: float, max_requests: int):
    """Every connection sends a request, waits for its reply, and again, until
    ``seconds`` have passed or ``max_requests`` were sent in all. Returns
    ``(replies, latencies, elapsed seconds)``."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    budget = itertools.count()

    async def worker(call, offset):
        n = offset
        while time.monotonic() < deadline and next(budget) < max_requests:
            started = time.perf_counter()
            await call(n)
            n += 1
            latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(worker(call, i) for i, call in enumerate(calls)))
    return len(latencies), latencies, time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Pushes:
    """``count`` sockets watching every product, read by tasks that count the
    frames they get: the watchers that make each write compute pushes."""

    def __init__(self) -> None:
        self.sockets: list = []
        self.tasks: list[asyncio.Task] = []
        self.frames = 0

    async def watch(self, url: str, proto: str, count: int) -> None:
        self.sockets = await open_sockets(url, proto, count)
        await ask_all(self.sockets, proto, WATCH_ALL)
        self.tasks = [asyncio.create_task(self.read(ws)) for ws in self.sockets]

    async def read(self, ws) -> None:
        async for _ in ws:
            self.frames += 1

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await close_sockets(self.sockets)


async def websocket_calls(target: dict, opts: dict, ids) -> tuple[list[Call], Any]:
    """Websocket connections to ``target`` (logged in as ``users`` users, if
    given), each a :data:`Call` sending ``action``; and their closing."""
    proto, action = target["proto"], opts.get("action", "retrieve")
    sockets = await open_sockets(
        target["url"], proto, opts["conns"], users=opts.get("users", 0)
    )

    def call_on(ws) -> Call:
        async def call(n: int) -> None:
            request_id = next(ids)
            frame = request_frame(proto, action, n, request_id)
            await request(ws, proto, frame, request_id)

        return call

    return [call_on(ws) for ws in sockets], lambda: close_sockets(sockets)


async def http_calls(target: dict, opts: dict, ids) -> tuple[list[Call], Any]:
    """Keep-alive HTTP connections to ``target``, each a :data:`Call` getting
    ``target[action]`` (a path with ``{pk}`` and ``{page}``)."""
    path = target[opts["action"]]
    connections = await asyncio.gather(
        *(HTTPConnection(target["url"]).open() for _ in range(opts["conns"]))
    )
    # Every reply is checked for its status; the first one of each connection
    # for what it holds too: one product, or a page of 25.
    rows = 1 if opts["action"] == "retrieve" else 25
    for n, connection in enumerate(connections):
        body = await connection.get(path.format(pk=1, page=n % PAGES + 1))
        assert body.count(b'"price":') == rows, body[:300]

    def call_on(connection) -> Call:
        def call(n: int):
            return connection.get(path.format(pk=n % PKS + 1, page=n % PAGES + 1))

        return call

    async def close():
        await asyncio.gather(*(c.close() for c in connections))

    return [call_on(c) for c in connections], close


async def run_requests(opts: dict) -> dict:
    """Measure every target in turn, ``reps`` rounds, starting each round with the
    next target: a change in the machine's load then hits every target alike.
    With ``watchers``, that many more sockets watch every product meanwhile; the
    frames they get are counted."""
    targets, seconds = opts["targets"], opts["seconds"]
    max_requests = opts.get("max_requests", 200_000)
    connect_all = http_calls if opts.get("http") else websocket_calls
    ids = itertools.count(1)
    results: dict[str, list] = {target["name"]: [] for target in targets}
    for rep in range(opts["reps"]):
        for target in targets[rep % len(targets) :] + targets[: rep % len(targets)]:
            pushes = Pushes()
            calls, close = await connect_all(target, opts, ids)
            try:
                if opts.get("watchers"):
                    await pushes.watch(target["url"], target["proto"], opts["watchers"])
                await closed_loop(calls, opts["warmup"], max_requests)
                frames = pushes.frames
                count, latencies, elapsed = await closed_loop(
                    calls, seconds, max_requests
                )
                frames = pushes.frames - frames
            finally:
                await close()
                await pushes.close()
            results[target["name"]].append(
                {
                    "rate": count / elapsed,
                    "p50_ms": 1000 * percentile(latencies, 0.50),
                    "p99_ms": 1000 * percentile(latencies, 0.99),
                    "count": count,
                    "pushes_per_s": frames / max(len(pushes.sockets), 1) / elapsed,
                }
            )
    return results


# -- fan-out ----------------------------------------------------------------------


class Watchers:
    """Sockets watching product 1, each read by a task of its own that notes when
    the change it waits for arrives."""

    def __init__(self, url: str, proto: str, users: int = 0) -> None:
        self.url, self.proto, self.users = url, proto, users
        self.sockets: list = []
        self.tasks: list[asyncio.Task] = []
        self.value: int | None = None
        self.times: list[float] = []
        self.done = asyncio.Event()
        self.stray = 0

    async def grow(self, total: int) -> None:
        new = await open_sockets(
            self.url,
            self.proto,
            total - len(self.sockets),
            users=self.users,
            first=len(self.sockets),
        )
        if self.proto in SUBSCRIBE:
            await ask_all(new, self.proto, SUBSCRIBE[self.proto])
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
    watchers = Watchers(opts["url"], opts["proto"], opts.get("users", 0))
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

LIST = {"event": f"{STREAM}.list", "data": {}}
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
            await ask_all(sockets, proto, LIST)
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
    "requests": run_requests,
    "fanout": run_fanout,
    "changes": run_changes,
    "idle": run_idle,
}


def main() -> None:
    case, opts = sys.argv[1], json.loads(sys.argv[2])
    raise_fd_limit(opts.get("files", 0))
    result = asyncio.run(asyncio.wait_for(CASES[case](opts), opts["timeout"]))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

"""Stress harness: does every watcher's view equal a fresh read after heavy writes?

A cluster of real processes: a redis-server and two daphne servers sharing one
SQLite file (or, with ``--layer memory``, one daphne on the in-memory layer). About
two dozen watchers (filtered lists that rows move in and out of, searches, single
rows, per-user note lists; anonymous and logged in; on both servers) keep a mirror
of what they watch, the way a client does: the reply's rows, upsert on each
``retrieve`` push, remove on each ``delete`` push, re-read on ``resync``. Meanwhile
writers change the rows as fast as asked: websocket writers on both servers, HTTP
writers on the REST routes, and an ORM writer in a process of its own (saves,
deletes, rolled-back transactions, ``QuerySet.update()`` with ``announce()``, notes
changing owners). Faults on demand: loss of change messages (tests.lossy_layer),
Redis killed and restarted, watcher sockets cut and reconnected (with the
protocol's ``resume`` when the server offers it). Once the writes are over and the
frames have stopped, every mirror is compared, row by row and field by field, with
a fresh read of the same request; the run reports the rows that differ::

    python -m tests.stress --writes 3000 --layer core --seed 1
    python -m tests.stress --writes 3000 --layer pubsub --kill-redis
    python -m tests.stress --writes 500 --lossy 0.2 --no-resync   # must diverge

It prints a one-line summary (and the divergent rows) and exits 1 when some row
diverges, 2 when the harness itself could not do its job (a read failed, a frame
showed a rolled-back write, the frames did not stop). :func:`run_stress` is the
same from Python; tests/test_stress.py runs short versions in the test suite.

The summary's counts: ``writes`` by source (and when each source finished), their
outcomes (``gone``: another writer had deleted the row; ``refused``: an invalid
write, on purpose; ``rolled_back``: transactions that must push nothing),
``frames`` and ``pushes`` received by the watchers, ``resyncs`` received,
``reconnects`` after cuts, of which ``resumed`` and ``reloaded`` (read every watch
again), ``dropped`` change messages (the lossy layer), ``pos_gaps`` (a pushed
frame's ``pos`` skipped numbers), ``count_mismatches`` (list replies whose
``count`` is not their number of rows: must be 0, as the count and the rows are
read in one snapshot, and is also an error), ``foreign_pushes`` (a note
pushed to a watcher of another user's notes: must be 0, and is also an error),
``divergent`` rows, and
``heal``: how long after the last write (and the end of the faults) the last frame
came.

A divergent row is ``missing`` (in the fresh read, not in the mirror), ``extra``
(the other way round), ``stale`` (some fields differ), or ``unwatched``: an object
whose watcher re-read it after a reconnect while it could not see it (a 404, which
watches nothing), and that it can see again now. Each comes with what the mirror
last did with the row and who last wrote it.

The client side follows docs/live.rst and the resume protocol of issue 15: the
sockets ask for ``?resume=1``; after a cut, a socket whose connection frame
offered ``resume`` sends it first, and reads every watch again when it is not
resumed (``--no-resume`` always reads again). The same harness therefore checks
today's servers (no resync, no resume: loss shows as divergence) and servers with
those features.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.servers import (
    ROOT,
    daphne,
    free_port,
    run_module,
    server_env,
    start_redis,
)
from tests.stress_orm import NOTE_USERS, NOTES_PER_USER, PRODUCTS, ROLLED_BACK, WRITER
from tests.stress_orm import note_text as _note_text
from tests.stress_orm import product_fields as _product_fields

BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "memory": "channels.layers.InMemoryChannelLayer",
}
LOSSY_BACKENDS = {
    "core": "tests.lossy_layer.LossyRedisChannelLayer",
    "pubsub": "tests.lossy_layer.LossyRedisPubSubChannelLayer",
    "memory": "tests.lossy_layer.LossyInMemoryChannelLayer",
}
#: Every watched collection fits in one page (tests.server_settings raises
#: MAX_PAGE_SIZE for the stress runs; the writers keep under 100 rows each).
LIMIT = 1000
#: How the writes are shared: websocket, HTTP, ORM.
SHARES = {"ws": 0.5, "http": 0.25, "orm": 0.25}
REQUEST_TIMEOUT = 30.0


@dataclass
class Config:
    writes: int = 300
    layer: str = "core"  # core | pubsub | memory
    kill_redis: bool = False
    cut_sockets: bool = False
    lossy: float = 0.0
    resync: bool = True
    seed: int = 1
    rate: float = 300.0  # writes per second, all writers together
    quiet: float = 3.0  # no frame for this long: the watchers have heard everything
    heal_timeout: float = 60.0
    fault_at: float | None = None  # seconds into the writes; default 30 % of them
    fault_for: float | None = None  # Redis down / sockets apart; default 2-3 s
    workdir: Path | None = None
    keep: bool = False  # keep the work directory (logs, database) after a clean run
    resume: bool = True  # ask for resume (?resume=1) and resume after a cut

    def check(self) -> None:
        if self.layer not in BACKENDS:
            raise ValueError(f"--layer must be one of {', '.join(BACKENDS)}")
        if self.kill_redis and self.layer == "memory":
            raise ValueError("--kill-redis needs a Redis layer (core or pubsub)")
        if not 0 <= self.lossy < 1:
            raise ValueError("--lossy is a fraction: 0 <= loss < 1")
        if self.writes < 1 or self.rate <= 0:
            raise ValueError("--writes and --rate must be positive")

    @property
    def write_seconds(self) -> float:
        return self.writes / self.rate

    @property
    def fault_start(self) -> float:
        return self.fault_at if self.fault_at is not None else 0.3 * self.write_seconds

    @property
    def fault_length(self) -> float:
        if self.fault_for is not None:
            return self.fault_for
        return min(3.0, max(1.5, 0.3 * self.write_seconds))


@dataclass
class Divergence:
    watcher: str
    pk: Any
    # missing | extra | stale, or unwatched: an object the watcher re-read while
    # it could not see it (a 404 watches nothing), and that came back since
    kind: str
    fields: list[str] = field(default_factory=list)
    detail: str = ""

    def __str__(self) -> str:
        what = f"stale {','.join(self.fields)}" if self.kind == "stale" else self.kind
        return f"  {self.watcher} id={self.pk}: {what}; {self.detail}"


@dataclass
class Result:
    config: Config
    writes: Counter
    outcomes: Counter
    watchers: int
    divergences: list[Divergence]
    stats: Counter
    errors: list[str]
    heal: float
    write_seconds: float
    duration: float
    workdir: Path | None = None
    write_failures: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def divergent(self) -> int:
        return len(self.divergences)

    @property
    def ok(self) -> bool:
        return not self.divergences and not self.errors

    def summary(self) -> str:
        c, s, o = self.config, self.stats, self.outcomes
        faults = [
            name
            for name, on in [
                ("kill-redis", c.kill_redis),
                ("cut-sockets", c.cut_sockets),
            ]
            if on
        ]
        layer = c.layer + (f" lossy={c.lossy:g}" if c.lossy else "")
        layer += "" if c.resync else " resync=off"
        total = sum(self.writes.values())
        by_source = " ".join(
            f"{k}={v}/{self.seconds.get(k, 0):.1f}s"
            for k, v in sorted(self.writes.items())
        )
        outcome = " ".join(f"{k}={v}" for k, v in sorted(o.items()))
        rate = total / self.write_seconds if self.write_seconds else 0
        return (
            f"stress layer={layer} faults={','.join(faults) or 'none'} seed={c.seed} "
            f"writes={total} ({by_source}; {outcome}) rate={rate:.0f}/s "
            f"watchers={self.watchers} frames={s['frames']} pushes={s['pushes']} "
            f"resyncs={s['resyncs']} reconnects={s['reconnects']} "
            f"resumed={s['resumed']} reloaded={s['reloaded']} "
            f"dropped={s['dropped']} pos_gaps={s['pos_gaps']} "
            f"count_mismatches={s['count_mismatches']} "
            f"foreign_pushes={s['foreign_pushes']} "
            f"divergent={self.divergent}{self._unwatched()} heal={self.heal:.2f}s "
            f"duration={self.duration:.1f}s"
            + (f" errors={len(self.errors)}" if self.errors else "")
        )

    def _unwatched(self) -> str:
        count = sum(d.kind == "unwatched" for d in self.divergences)
        return f" (unwatched={count})" if count else ""

    def report(self, rows: int = 20) -> str:
        lines = [self.summary()]
        for divergence in self.divergences[:rows]:
            lines.append(str(divergence))
        if self.divergent > rows:
            lines.append(f"  ... and {self.divergent - rows} more divergent rows")
        for error in self.errors[:rows]:
            lines.append(f"  error: {error}")
        for failure in self.write_failures[:5]:
            lines.append(f"  write failed: {failure}")
        if self.workdir is not None and not self.ok:
            lines.append(f"  logs and database kept in {self.workdir}")
        return "\n".join(lines)


# -- the cluster -----------------------------------------------------------------


class Cluster:
    """redis-server (which :meth:`kill_redis` and :meth:`restart_redis` can stop
    and start again on its port) and the daphne processes, on one SQLite file."""

    def __init__(self, config: Config, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.redis: subprocess.Popen | None = None
        self.redis_port: int | None = None
        self.ports: list[int] = []
        self.stack = contextlib.ExitStack()
        self.data: dict = {}
        self.drop_log = workdir / "dropped.log"
        self.orm_log = None
        self.orm_process: subprocess.Popen | None = None

    def __enter__(self) -> Cluster:
        config = self.config
        extra = {
            "CB_STRESS": "1",
            "CB_LOSS": str(config.lossy),
            "CB_LOSS_SEED": str(config.seed),
            "CB_LOSS_LOG": str(self.drop_log),
        }
        if not config.resync:
            extra["CB_LIVE_RESYNC"] = "0"
        backends = LOSSY_BACKENDS if config.lossy else BACKENDS
        redis_url = None
        try:
            if config.layer == "memory":
                extra["CB_LAYER_BACKEND"] = backends["memory"]
            else:
                extra["CB_REDIS_BACKEND"] = backends[config.layer]
                self.redis_port = free_port()
                self.restart_redis()
                redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
            self.env = server_env(self.workdir / "db.sqlite3", redis_url, **extra)
            self.data = json.loads(
                self._manage("setup", "--seed", str(config.seed)).strip()
            )
            self._start_servers(1 if config.layer == "memory" else 2)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        process = self.orm_process
        if process is not None:
            if process.poll() is None:
                process.kill()
                process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
        self.stack.close()
        self.kill_redis()
        if self.orm_log is not None:
            self.orm_log.close()

    def _start_servers(self, count: int) -> None:
        """Start the daphne processes side by side (each takes a while)."""
        servers = [
            daphne(self.env, self.workdir / f"daphne-{i}.log") for i in range(count)
        ]
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            started = [pool.submit(server.__enter__) for server in servers]
        for server, future in zip(servers, started, strict=True):
            if future.exception() is None:
                self.stack.push(server.__exit__)
        self.ports = [future.result() for future in started]

    def _manage(self, *args: str) -> str:
        """Run ``python -m tests.stress_orm <args>``; return its output."""
        return run_module(self.env, "tests.stress_orm", *args)

    def kill_redis(self) -> None:
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait(timeout=10)
            self.redis = None

    def restart_redis(self) -> None:
        """Start redis-server on its port (empty: it keeps nothing on disk)."""
        for _ in range(50):
            try:
                self.redis = start_redis(self.workdir, self.redis_port)
                return
            except RuntimeError:  # the port is not free again yet
                time.sleep(0.1)
        self.redis = start_redis(self.workdir, self.redis_port)

    def orm_writer(self, count: int, rate: float, log: Path) -> subprocess.Popen:
        """The ORM writer's own process (tests.stress_orm write)."""
        args = ["--seed", str(self.config.seed), "--count", str(count)]
        args += ["--rate", f"{rate:.3f}", "--log", str(log)]
        self.orm_log = open(self.workdir / "orm-writer.log", "wb")  # noqa: SIM115
        self.orm_process = subprocess.Popen(
            [sys.executable, "-m", "tests.stress_orm", "write", *args],
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.orm_log,
            text=True,
        )
        return self.orm_process


# -- HTTP ------------------------------------------------------------------------


class Http:
    """A small keep-alive HTTP/1.1 client for the REST routes (one request at a
    time per instance)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: Any = None):
        """``(status, frame)``; the frame is the decoded JSON body."""
        payload = b"" if body is None else json.dumps(body).encode()
        headers = [
            f"{method} {path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
        ]
        if self.token:
            headers.append(f"Authorization: Token {self.token}")
        message = ("\r\n".join(headers) + "\r\n\r\n").encode() + payload
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(
                    "127.0.0.1", self.port
                )
                fresh = True
            else:
                fresh = False
            try:
                self.writer.write(message)
                await self.writer.drain()
                return await asyncio.wait_for(self._response(), REQUEST_TIMEOUT)
            except TimeoutError:
                await self.close()  # the answer may still come: not on this one
                raise
            except (ConnectionError, asyncio.IncompleteReadError, _Closed):
                await self.close()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    async def _response(self):
        status_line = await self.reader.readline()
        if not status_line:
            raise _Closed
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = (await self.reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, json.loads(body) if body else None


class _Closed(Exception):
    """The server closed a kept-alive connection before answering."""


# -- watchers --------------------------------------------------------------------


class Watcher:
    """One watch (a request with its own #hash) and the client's mirror of it."""

    def __init__(self, tag: str, stream: str, action: str, data: dict, user: str):
        self.tag = tag
        self.stream = stream
        self.action = action
        self.event = f"{stream}.{action}#{tag}"
        self.data = data
        self.user = user
        self.object = action == "retrieve"
        self.mirror: dict[Any, dict] = {}
        # pk -> how the mirror last changed for it: (time, what, pos)
        self.trace: dict[Any, tuple[float, str, Any]] = {}
        self.dirty = False  # a re-read is owed (resync, or lost with a cut socket)
        self.unwatched = False  # an object whose last read was a 404
        self.client: Client | None = None

    @property
    def name(self) -> str:
        return f"{self.event} ({self.client.name if self.client else '?'})"

    def apply_reply(self, frame: dict) -> None:
        """Replace the mirror with a reply's rows; runs as the reply arrives."""
        now = time.time()
        error = frame.get("error")
        if error is not None:
            if self.object and error.get("status") == 404:
                pk = self.data["id"]
                self.trace[pk] = (now, "read: 404", None)
                self.mirror = {}
                self.dirty = False
                self.unwatched = True
            else:
                self.client.run.error(f"{self.name} read failed: {error}")
            return
        data = frame["data"]
        if self.object:
            rows = [data]
        else:
            rows = data["rows"]
            if len(rows) >= data["limit"]:
                self.client.run.error(
                    f"{self.name}: a full page of {data['limit']} rows; the mirror "
                    "may miss some (raise MAX_PAGE_SIZE)"
                )
            if data["count"] != len(rows):
                # count() and the rows are read in one snapshot: never
                self.client.run.stats["count_mismatches"] += 1
                self.client.run.error(
                    f"{self.name}: count {data['count']} for {len(rows)} rows"
                )
        for pk in self.mirror:
            self.trace[pk] = (now, "read: absent", None)
        for row in rows:
            self.check(row, "reply")
        self.mirror = {row["id"]: row for row in rows}
        for pk in self.mirror:
            self.trace[pk] = (now, "read", None)
        self.dirty = False
        self.unwatched = False

    def check(self, row: dict, what: str) -> None:
        if ROLLED_BACK in (row.get("name"), row.get("description"), row.get("text")):
            self.client.run.stats["rolled_back_seen"] += 1
            self.client.run.error(f"{self.name}: a {what} shows a rolled-back write")

    def check_owner(self, row: dict) -> None:
        """A note pushed to a watcher of its user's notes is that user's (the
        binding's ``get_queryset()`` filters by owner), at any moment."""
        if self.stream != "shop.Note":
            return
        run = self.client.run
        if row.get("owner") != run.data["users"][self.user]:
            run.stats["foreign_pushes"] += 1
            run.error(f"{self.name}: a push of another user's note: {row}")

    def apply_push(self, action: str, data: dict, pos: Any) -> None:
        pk = data.get("id")
        if action == "retrieve":
            self.check(data, "push")
            self.check_owner(data)
            self.mirror[pk] = data
        else:
            self.mirror.pop(pk, None)
        self.trace[pk] = (time.time(), action, pos)


class Client:
    """One websocket: its requests, its watchers, and reconnects with resume."""

    def __init__(self, run: Run, name: str, port: int, user: str | None) -> None:
        self.run = run
        self.name = name
        self.port = port
        self.user = user
        self.token = run.data["tokens"][user] if user else None
        self.watchers: dict[str, Watcher] = {}
        self.pending: dict[int, tuple[asyncio.Future, Any]] = {}
        self.ids = itertools.count(1)
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.ready = asyncio.Event()
        self.resume_token: str | None = None
        self.pos = 0
        self.cutting = False
        self.reconnecting = False
        self.reloading = 0
        self.asks = run.config.resume  # for numbered pushes and resume

    def add(self, watcher: Watcher) -> None:
        watcher.client = self
        self.watchers[watcher.tag] = watcher

    @property
    def busy(self) -> bool:
        return self.reconnecting or bool(self.reloading) or bool(self.pending)

    async def connect(self) -> dict:
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        self.ws = await connect(
            f"ws://127.0.0.1:{self.port}/ws/" + ("?resume=1" if self.asks else ""),
            additional_headers=headers,
            max_size=None,
            ping_interval=None,
            open_timeout=REQUEST_TIMEOUT,
        )
        hello = json.loads(await asyncio.wait_for(self.ws.recv(), REQUEST_TIMEOUT))
        if hello.get("event") != "connection":
            raise RuntimeError(f"{self.name}: first frame is not connection: {hello}")
        self.reader = asyncio.create_task(self._read(self.ws))
        self.ready.set()
        return hello

    async def open(self) -> None:
        hello = await self.connect()
        self.resume_token = (hello["data"].get("resume") or {}).get("token")
        await asyncio.gather(*(self.reload(w) for w in self.watchers.values()))

    async def close(self) -> None:
        self.cutting = True
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader

    async def _read(self, ws) -> None:
        try:
            async for text in ws:
                self._take(json.loads(text))
        except ConnectionClosed:
            pass
        finally:
            self.ready.clear()
            for future, _ in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("socket closed"))
            self.pending.clear()
            if not self.cutting and not self.run.stopping:
                self.run.stats["unexpected_closes"] += 1
                self.run.error(f"{self.name}: the server closed the socket")
                self.run.spawn(self.reconnect(0.2))

    def _take(self, frame: dict) -> None:
        run = self.run
        if self.watchers:
            run.last_frame = time.monotonic()
            run.stats["frames"] += 1
        request_id = frame.get("request_id")
        if request_id is not None:
            future, callback = self.pending.pop(request_id, (None, None))
            if future is not None:
                if callback is not None:
                    callback(frame)
                if not future.done():
                    future.set_result(frame)
            return
        pos = frame.get("pos")
        if isinstance(pos, int):
            if self.pos and pos > self.pos + 1:
                run.stats["pos_gaps"] += 1
            self.pos = max(self.pos, pos)
        event = frame.get("event") or ""
        name, _, tag = event.partition("#")
        stream, _, action = name.rpartition(".")
        if "error" in frame:
            run.error(f"{self.name}: error frame {frame}")
            return
        if action == "resync":
            run.stats["resyncs"] += 1
            for watcher in self.watchers.values():
                if watcher.stream == stream and (not tag or watcher.tag == tag):
                    run.spawn(self.reload(watcher))
            return
        if action not in ("retrieve", "delete"):
            return  # connection, notify
        run.stats["pushes"] += 1
        watcher = self.watchers.get(tag)
        if watcher is None or watcher.stream != stream:
            run.stats["unexpected_pushes"] += 1
            run.error(f"{self.name}: push for no watcher: {event}")
            return
        if watcher.object and frame["data"].get("id") != watcher.data["id"]:
            run.error(f"{watcher.name}: push of another object: {frame}")
        watcher.apply_push(action, frame["data"], pos)

    async def request(self, event: str, data: dict, callback=None) -> dict:
        """Send a request and wait for its reply; ``callback(reply)`` runs as the
        reply arrives, before any later frame is read."""
        await asyncio.wait_for(self.ready.wait(), REQUEST_TIMEOUT)
        request_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = (future, callback)
        frame = {"event": event, "data": data, "request_id": request_id}
        try:
            await self.ws.send(json.dumps(frame))
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        finally:
            self.pending.pop(request_id, None)

    async def reload(self, watcher: Watcher) -> None:
        """Read the watch again; the reply replaces the mirror."""
        watcher.dirty = True
        self.reloading += 1
        try:
            await self.request(watcher.event, watcher.data, watcher.apply_reply)
            self.run.stats["reads"] += 1
        except (ConnectionError, ConnectionClosed, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                self.run.error(f"{watcher.name}: read timed out")
            # else: the socket went; the reconnect reads it again (dirty)
        finally:
            self.reloading -= 1

    async def cut(self, downtime: float) -> None:
        """Close the socket abruptly (no close frame), then reconnect."""
        self.cutting = True
        self.reconnecting = True
        self.run.stats["cuts"] += 1
        self.ws.transport.abort()
        await self.reader
        self.cutting = False
        await self.reconnect(downtime)

    async def reconnect(self, delay: float) -> None:
        """Connect again; resume when the server offers it, else read every watch
        again (the JavaScript client's reconnect)."""
        self.reconnecting = True
        try:
            await asyncio.sleep(delay)
            for attempt in itertools.count():
                try:
                    hello = await self.connect()
                    break
                except (OSError, InvalidHandshake, TimeoutError):
                    if attempt >= 100:
                        raise
                    await asyncio.sleep(0.2)
            self.run.stats["reconnects"] += 1
            offered = (hello["data"].get("resume") or {}).get("token")
            resumed = False
            if self.asks and self.resume_token and offered is not None:
                reply = await self.request(
                    "resume", {"token": self.resume_token, "pos": self.pos}
                )
                data = reply.get("data") or {}
                if "error" not in reply and data.get("resumed") is True:
                    resumed = True
                    self.resume_token = data["token"]
                    self.pos = data["pos"]
            if resumed:
                self.run.stats["resumed"] += 1
                again = [w for w in self.watchers.values() if w.dirty]
            else:
                self.run.stats["reloaded"] += 1
                self.resume_token = offered
                self.pos = 0
                again = list(self.watchers.values())
            await asyncio.gather(*(self.reload(w) for w in again))
        finally:
            self.reconnecting = False


def watcher_plan(data: dict) -> list[tuple[str, str | None, int, list[Watcher]]]:
    """(socket name, user, server index, watchers): 26 watchers on 10 sockets,
    anonymous and logged in, on both servers."""
    c1, c2, c3, _ = data["categories"]
    p, notes = data["products"], data["notes"]

    def product(tag, action, payload, user=None):
        return Watcher(tag, "shop.Product", action, payload, user)

    def lst(tag, filters, user=None, **extra):
        return product(tag, "list", {"filters": filters, "limit": LIMIT, **extra}, user)

    def search(tag, query, user=None, **extra):
        return product(tag, "search", {"query": query, "limit": LIMIT, **extra}, user)

    def note_list(tag, user):
        return Watcher(tag, "shop.Note", "list", {"limit": LIMIT}, user)

    def note(tag, user):
        return Watcher(tag, "shop.Note", "retrieve", {"id": notes[user][0]}, user)

    plan = [
        ("anon-0", None, 0, lst("stock", {"in_stock": True})),
        ("anon-0", None, 0, lst("nostock", {"in_stock": False}, ordering="-price")),
        ("anon-0", None, 0, product("p0", "retrieve", {"id": p[0]})),
        ("anon-1", None, 1, lst("cheap", {"price__lt": 50})),
        ("anon-1", None, 1, lst("dear", {"price__gt": 50})),
        ("anon-1", None, 1, search("red", "red")),
        ("anon-2", None, 0, lst("cat1", {"category": c1})),
        ("anon-2", None, 0, lst("cat23", {"category__in": [c2, c3]})),
        ("anon-2", None, 0, product("p1", "retrieve", {"id": p[1]})),
        ("anon-3", None, 1, lst("all", {})),
        ("anon-3", None, 1, search("blue", "blue", filters={"in_stock": True})),
        ("anon-3", None, 1, product("p2", "retrieve", {"id": p[2]})),
        ("alice-0", "alice", 0, note_list("notes-alice-0", "alice")),
        ("alice-0", "alice", 0, note("note-alice", "alice")),
        (
            "alice-0",
            "alice",
            0,
            lst("stock-cheap", {"in_stock": True, "price__lt": 30}),
        ),
        ("alice-1", "alice", 1, note_list("notes-alice-1", "alice")),
        ("alice-1", "alice", 1, search("lamp", "lamp")),
        ("bob-0", "bob", 0, note_list("notes-bob-0", "bob")),
        ("bob-0", "bob", 0, note("note-bob", "bob")),
        ("bob-0", "bob", 0, product("p3", "retrieve", {"id": p[3]})),
        ("bob-1", "bob", 1, note_list("notes-bob-1", "bob")),
        ("bob-1", "bob", 1, lst("cat2-dear", {"category": c2, "price__gt": 20})),
        ("carol-1", "carol", 1, note_list("notes-carol-1", "carol")),
        ("carol-1", "carol", 1, note("note-carol", "carol")),
        ("carol-1", "carol", 1, search("green", "green")),
        ("carol-0", "carol", 0, note_list("notes-carol-0", "carol")),
    ]
    sockets: dict[str, tuple[str | None, int, list[Watcher]]] = {}
    for name, user, server, watcher in plan:
        watcher.user = user  # the socket's user reads it fresh, too
        sockets.setdefault(name, (user, server, []))[2].append(watcher)
    return [(name, user, server, ws) for name, (user, server, ws) in sockets.items()]


# -- writers ---------------------------------------------------------------------


class Pacer:
    """Hands out ``count`` slots at ``rate`` per second to the workers sharing it."""

    def __init__(self, count: int, rate: float) -> None:
        self.left = count
        self.rate = rate
        self.taken = 0
        self.start: float | None = None

    async def next(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        if self.start is None:
            self.start = time.monotonic()
        slot = self.start + self.taken / self.rate
        self.taken += 1
        delay = slot - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return True


class Run:
    """One stress run against a started cluster."""

    def __init__(self, config: Config, cluster: Cluster) -> None:
        self.config = config
        self.cluster = cluster
        self.data = cluster.data
        self.rng = random.Random(config.seed)
        self.stats: Counter = Counter()
        self.writes: Counter = Counter()
        self.seconds: dict[str, float] = {}  # source -> when its last write ended
        self.outcomes: Counter = Counter()
        self.errors: list[str] = []
        self.write_errors: list[str] = []
        self.stopping = False
        self.last_frame = time.monotonic()
        self.tasks: set[asyncio.Task] = set()
        self.products = set(self.data["products"])
        self.notes = {user: set(pks) for user, pks in self.data["notes"].items()}
        # (stream, pk) -> [(time, source, op)]: who wrote each row, for the report
        self.write_log: dict[tuple[str, Any], list] = defaultdict(list)
        self.start = time.time()
        self.clients: list[Client] = []
        self.writer_clients: list[Client] = []
        self.watchers: list[Watcher] = []

    def error(self, message: str) -> None:
        self.errors.append(message)

    def spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.error(f"task failed: {task.exception()!r}")

    def port(self, index: int) -> int:
        ports = self.cluster.ports
        return ports[index % len(ports)]

    # -- the run -------------------------------------------------------------------

    async def main(self) -> tuple[list[Divergence], float, float]:
        for name, user, server, watchers in watcher_plan(self.data):
            client = Client(self, name, self.port(server), user)
            for watcher in watchers:
                client.add(watcher)
                self.watchers.append(watcher)
            self.clients.append(client)
        users = [WRITER, *NOTE_USERS, WRITER]
        self.writer_clients = [
            Client(self, f"writer-{i}-{user}", self.port(i), user)
            for i, user in enumerate(users)
        ]
        await asyncio.to_thread(self.prepare_orm_writer)
        await asyncio.gather(
            *(client.open() for client in self.clients + self.writer_clients)
        )
        if self.errors:
            raise RuntimeError("; ".join(self.errors))

        writers = [
            ("ws", self.ws_writers),
            ("http", self.http_writers),
            ("orm", self.orm_writers),
        ]
        counts = self._shares()
        started = time.monotonic()
        faults = asyncio.ensure_future(self.faults(started))
        refresher = asyncio.ensure_future(self.refresh_known())

        async def timed(source, make):
            await make(counts[source], self.config.rate * SHARES[source])
            self.seconds[source] = time.monotonic() - started

        await asyncio.gather(*(timed(source, make) for source, make in writers))
        written = time.monotonic()
        await faults
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        writes_end = time.monotonic()
        heal = await self.heal(writes_end)
        divergences = await self.compare()
        self.stopping = True
        for client in self.clients + self.writer_clients:
            await client.close()
        self.stats["dropped"] = self._dropped()
        return divergences, heal, written - started

    def _shares(self) -> dict[str, int]:
        total = self.config.writes
        counts = {
            "http": round(total * SHARES["http"]),
            "orm": round(total * SHARES["orm"]),
        }
        counts["ws"] = total - counts["http"] - counts["orm"]
        return counts

    def _dropped(self) -> int:
        log = self.cluster.drop_log
        return len(log.read_text().splitlines()) if log.exists() else 0

    async def heal(self, writes_end: float) -> float:
        """Wait until no frame has come for ``quiet`` seconds and nothing is owed;
        return how long after the writes (and faults) the last frame came."""
        config = self.config
        deadline = writes_end + config.heal_timeout
        while True:
            now = time.monotonic()
            busy = any(client.busy for client in self.clients)
            if not busy and now - self.last_frame >= config.quiet:
                break
            if now > deadline:
                self.error(f"no quiet within {config.heal_timeout:.0f} s")
                break
            await asyncio.sleep(0.05)
        return max(0.0, self.last_frame - writes_end)

    async def faults(self, started: float) -> None:
        config = self.config
        if not (config.kill_redis or config.cut_sockets):
            return
        await asyncio.sleep(max(0.0, started + config.fault_start - time.monotonic()))
        cuts = []
        if config.cut_sockets:
            cuts.append(asyncio.ensure_future(self.cut_some(config.fault_length)))
        if config.kill_redis:
            self.cluster.kill_redis()
            self.stats["redis_kills"] += 1
            await asyncio.sleep(config.fault_length)
            await asyncio.to_thread(self.cluster.restart_redis)
        await asyncio.gather(*cuts)

    async def cut_some(self, length: float) -> None:
        """Two rounds: a third of the watcher sockets each, cut and reconnected."""
        rng = random.Random(f"cuts-{self.config.seed}")
        for round_ in range(2):
            chosen = rng.sample(self.clients, max(2, len(self.clients) // 3))
            await asyncio.gather(
                *(client.cut(rng.uniform(0.2, 0.8) * length) for client in chosen)
            )
            if round_ == 0:
                await asyncio.sleep(length / 2)

    # -- writers -------------------------------------------------------------------

    def log_write(self, source: str, op: str, stream: str, pk: Any) -> None:
        self.write_log[(stream, pk)].append((time.time(), source, op))

    def outcome(self, source: str, op: str, status: int, detail: Any = None) -> None:
        self.writes[source] += 1
        if status == 200:
            self.outcomes["ok"] += 1
        elif status == 404 or (status == 400 and op == "save"):
            # Another writer deleted the row first (a save then creates, and a
            # partial one lacks the required fields).
            self.outcomes["gone"] += 1
        elif status == 400 and op == "invalid":
            self.outcomes["refused"] += 1
        else:
            self.outcomes["failed"] += 1
            if len(self.write_errors) < 20:
                self.write_errors.append(f"{source} {op}: {status} {detail}")

    def pick_product_op(self, rng: random.Random) -> str:
        op = rng.choices(
            ["create", "update", "save", "save_new", "delete", "invalid"],
            [14, 40, 10, 3, 12, 4],
        )[0]
        if op in ("create", "save_new", "delete"):
            if len(self.products) >= PRODUCTS[1]:
                op = "delete"
            elif len(self.products) <= PRODUCTS[0]:
                op = "create"
        if op != "create" and op != "save_new" and not self.products:
            op = "create"
        return op

    def pick_note_op(self, rng: random.Random, user: str) -> str:
        op = rng.choices(["create", "update", "delete"], [3, 5, 3])[0]
        mine = self.notes[user]
        if op == "create" and len(mine) >= NOTES_PER_USER[1]:
            op = "delete"
        if op != "create" and len(mine) <= NOTES_PER_USER[0]:
            op = "create"
        return op

    def any_product(self, rng: random.Random) -> int:
        return rng.choice(sorted(self.products))

    def product_fields(self, rng: random.Random, full: bool = True) -> dict:
        return _product_fields(rng, self.data["categories"], full)

    async def ws_writers(self, count: int, rate: float) -> None:
        pacer = Pacer(count, rate)
        workers = []
        for index, client in enumerate(self.writer_clients):
            for lane in range(4):
                rng = random.Random(f"ws-{self.config.seed}-{index}-{lane}")
                workers.append(self.ws_worker(client, pacer, rng))
        await asyncio.gather(*workers)

    async def ws_worker(self, client: Client, pacer: Pacer, rng) -> None:
        while await pacer.next():
            if client.user in NOTE_USERS and rng.random() < 0.35:
                stream, op = "shop.Note", self.pick_note_op(rng, client.user)
                mine = self.notes[client.user]
                pk = rng.choice(sorted(mine)) if op != "create" else None
                data = {"text": _note_text(rng)} if op != "delete" else {}
            else:
                stream, op = "shop.Product", self.pick_product_op(rng)
                pk = None if op in ("create", "save_new") else self.any_product(rng)
                data = {}
                if op in ("create", "save_new"):
                    data = self.product_fields(rng)
                elif op in ("update", "save"):
                    data = self.product_fields(rng, full=False)
                elif op == "invalid":
                    data = {"price": "-1.00"}
            if pk is not None:
                data["id"] = pk
            action = {"invalid": "update", "save_new": "save"}.get(op, op)
            try:
                reply = await client.request(f"{stream}.{action}", data)
            except (ConnectionError, ConnectionClosed, TimeoutError) as exc:
                self.outcome("ws", op, 0, repr(exc))
                continue
            error = reply.get("error")
            status = error["status"] if error else 200
            self.outcome("ws", op, status, error)
            self._learn(stream, op, pk, reply.get("data"), status, client.user, "ws")

    def _learn(self, stream, op, pk, data, status, user, source) -> None:
        """Keep the known keys up to date with a write's answer."""
        if status != 200 and status != 404:
            return
        known = self.products if stream == "shop.Product" else self.notes[user]
        if status == 404 or op == "delete":
            known.discard(pk)
            if status == 200:
                self.log_write(source, op, stream, pk)
            return
        if op == "invalid":
            return
        pk = data.get("id", pk)
        known.add(pk)
        self.log_write(source, op, stream, pk)

    async def http_writers(self, count: int, rate: float) -> None:
        pacer = Pacer(count, rate)
        users = [WRITER, "alice", "bob", "carol"]
        workers = []
        for index in range(6):
            user = users[index % len(users)]
            http = Http(self.port(index), self.data["tokens"][user])
            rng = random.Random(f"http-{self.config.seed}-{index}")
            workers.append(self.http_worker(http, user, pacer, rng))
        await asyncio.gather(*workers)

    async def http_worker(self, http: Http, user: str, pacer: Pacer, rng) -> None:
        try:
            while await pacer.next():
                await self.http_write(http, user, rng)
        finally:
            await http.close()

    async def http_write(self, http: Http, user: str, rng) -> None:
        if user in NOTE_USERS and rng.random() < 0.35:
            stream, base, op = (
                "shop.Note",
                "/api/shop/Note/",
                self.pick_note_op(rng, user),
            )
            pk = rng.choice(sorted(self.notes[user])) if op != "create" else None
            body = {"text": _note_text(rng)}
            method = {"create": "POST", "update": "PATCH", "delete": "DELETE"}[op]
            path = base if pk is None else f"{base}{pk}/"
        else:
            stream, base = "shop.Product", "/api/shop/Product/"
            op = self.pick_product_op(rng)
            if op == "update":
                op = rng.choice(["update", "update", "put"])
            pk = None if op in ("create", "save_new") else self.any_product(rng)
            method, path = {
                "create": ("POST", base),
                "save_new": ("POST", f"{base}save/"),
                "save": ("POST", f"{base}save/"),
                "update": ("PATCH", f"{base}{pk}/"),
                "put": ("PUT", f"{base}{pk}/"),
                "invalid": ("PATCH", f"{base}{pk}/"),
                "delete": ("DELETE", f"{base}{pk}/"),
            }[op]
            body = self.product_fields(rng, full=op in ("create", "save_new", "put"))
            if op == "invalid":
                body = {"price": "-2.00"}
            if op == "save":
                body["id"] = pk
        if op == "delete":
            body = None
        try:
            status, frame = await http.request(method, path, body)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, _Closed) as exc:
            self.outcome("http", op, 0, repr(exc))
            return
        error = (frame or {}).get("error")
        self.outcome("http", op, status, error)
        data = (frame or {}).get("data") or {}
        self._learn(stream, op, pk, data, status, user, "http")

    def prepare_orm_writer(self) -> None:
        """Start the ORM writer's process early (Django takes a while to set up);
        it waits for :meth:`orm_writers` to say go."""
        self.orm_process = None
        if self.config.layer != "memory":
            count = self._shares()["orm"]
            rate = self.config.rate * SHARES["orm"]
            self.orm_writes = self.cluster.workdir / "orm-writes.jsonl"
            self.orm_process = self.cluster.orm_writer(count, rate, self.orm_writes)
            if self.orm_process.stdout.readline().strip() != "ready":
                raise RuntimeError("the ORM writer did not start")

    async def orm_writers(self, count: int, rate: float) -> None:
        if self.orm_process is None:
            await self.orm_in_server(count, rate)
            return
        process = self.orm_process
        output, _ = await asyncio.to_thread(process.communicate, "go\n")
        if process.returncode != 0:
            self.error(f"the ORM writer failed (see {self.cluster.workdir})")
            return
        self._orm_counts(json.loads(output)["ops"])
        self._orm_log(self.orm_writes)

    def _orm_counts(self, ops: dict) -> None:
        for op, number in ops.items():
            self.writes["orm"] += number
            if op == "error":
                self.outcomes["failed"] += number
            elif op == "gone":
                self.outcomes["gone"] += number
            elif "rolled_back" in op:
                self.outcomes["rolled_back"] += number
            else:
                self.outcomes["ok"] += number

    def _orm_log(self, log: Path) -> None:
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry["op"].startswith("error:") and len(self.write_errors) < 20:
                self.write_errors.append(f"orm {entry['op'][6:]}")
            for pk in entry["pks"]:
                self.write_log[(entry["stream"], pk)].append(
                    (entry["t"], "orm", entry["op"])
                )

    async def orm_in_server(self, count: int, rate: float) -> None:
        """The in-memory layer reaches one process: its ORM writes run there
        (tests.stress_bindings), a step per request."""
        pacer = Pacer(count, rate)
        ops: Counter = Counter()

        async def worker(http: Http) -> None:
            try:
                while await pacer.next():
                    body = {"seed": self.config.seed, "steps": 1}
                    try:
                        status, frame = await http.request(
                            "POST", "/api/stress/orm/", body
                        )
                    except (
                        OSError,
                        asyncio.IncompleteReadError,
                        TimeoutError,
                        _Closed,
                    ):
                        ops["error"] += 1
                        continue
                    if status != 200:
                        ops["error"] += 1
                        self.write_errors.append(f"orm: {status} {frame}")
                        continue
                    ops.update(frame["data"]["ops"])
            finally:
                await http.close()

        token = self.data["tokens"][WRITER]
        await asyncio.gather(*(worker(Http(self.port(0), token)) for _ in range(2)))
        self._orm_counts(ops)

    async def refresh_known(self) -> None:
        """Learn the keys other writers (the ORM's) created and deleted."""
        https = {
            user: Http(self.port(0), self.data["tokens"][user])
            for user in [WRITER, *NOTE_USERS]
        }
        try:
            while True:
                await asyncio.sleep(1.0)
                for user, http in https.items():
                    stream = "shop.Product" if user == WRITER else "shop.Note"
                    body = {"event": f"{stream}.list", "data": {"limit": LIMIT}}
                    with contextlib.suppress(
                        OSError, TimeoutError, _Closed, asyncio.IncompleteReadError
                    ):
                        status, frame = await http.request("POST", "/api/events/", body)
                        if status == 200:
                            pks = {row["id"] for row in frame["data"]["rows"]}
                            if user == WRITER:
                                self.products = pks
                            else:
                                self.notes[user] = pks
        finally:
            for http in https.values():
                await http.close()

    # -- the comparison ------------------------------------------------------------

    async def compare(self) -> list[Divergence]:
        https: dict[str | None, Http] = {}
        divergences = []
        try:
            for watcher in self.watchers:
                user = watcher.user
                if user not in https:
                    token = self.data["tokens"][user] if user else None
                    https[user] = Http(self.port(0), token)
                body = {"event": watcher.event, "data": watcher.data}
                status, frame = await https[user].request("POST", "/api/events/", body)
                if status == 404 and watcher.object:
                    fresh = {}
                elif status != 200:
                    self.error(f"{watcher.name}: fresh read failed: {status} {frame}")
                    continue
                elif watcher.object:
                    fresh = {frame["data"]["id"]: frame["data"]}
                else:
                    rows = frame["data"]["rows"]
                    if len(rows) >= frame["data"]["limit"]:
                        self.error(f"{watcher.name}: the fresh read is a full page")
                    fresh = {row["id"]: row for row in rows}
                divergences += self._diff(watcher, fresh)
        finally:
            for http in https.values():
                await http.close()
        return divergences

    def _diff(self, watcher: Watcher, fresh: dict) -> list[Divergence]:
        found = []
        for pk in sorted(fresh.keys() | watcher.mirror.keys(), key=str):
            mine, theirs = watcher.mirror.get(pk), fresh.get(pk)
            if mine == theirs:
                continue
            if mine is None:
                kind = "unwatched" if watcher.unwatched else "missing"
                fields = []
            elif theirs is None:
                kind, fields = "extra", []
            else:
                kind = "stale"
                fields = sorted(
                    k
                    for k in mine.keys() | theirs.keys()
                    if mine.get(k) != theirs.get(k)
                )
            found.append(
                Divergence(watcher.name, pk, kind, fields, self._explain(watcher, pk))
            )
        return found

    def _explain(self, watcher: Watcher, pk: Any) -> str:
        """What the mirror last did with the row, and who last wrote it."""
        parts = []
        trace = watcher.trace.get(pk)
        if trace is None:
            parts.append("never in the mirror")
        else:
            when, what, pos = trace
            parts.append(
                f"mirror: {what} at +{when - self.start:.2f}s"
                + (f" pos={pos}" if pos is not None else "")
            )
        writes = sorted(self.write_log.get((watcher.stream, pk), ()))
        if writes:
            when, source, op = writes[-1]
            parts.append(
                f"last write: {source} {op} at +{when - self.start:.2f}s"
                f" ({len(writes)} writes)"
            )
        else:
            parts.append("no logged write")
        return "; ".join(parts)


# -- running ---------------------------------------------------------------------


def run_stress(config: Config) -> Result:
    """Start a cluster, run the writers and watchers, compare; see the module doc."""
    config.check()
    began = time.monotonic()
    own_dir = config.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="cb-stress-")) if own_dir else config.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    with Cluster(config, workdir) as cluster:
        run = Run(config, cluster)
        divergences, heal, write_seconds = asyncio.run(run.main())
    result = Result(
        config=config,
        writes=run.writes,
        outcomes=run.outcomes,
        watchers=len(run.watchers),
        divergences=divergences,
        stats=run.stats,
        errors=run.errors,
        heal=heal,
        write_seconds=write_seconds,
        duration=time.monotonic() - began,
        workdir=workdir,
        write_failures=run.write_errors,
        seconds=run.seconds,
    )
    if own_dir and result.ok and not config.keep:
        shutil.rmtree(workdir, ignore_errors=True)
        result.workdir = None
    return result


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m tests.stress",
        description="Heavy concurrent writes; each watcher's mirror vs a fresh read.",
    )
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--layer", choices=sorted(BACKENDS), default="core")
    parser.add_argument(
        "--kill-redis",
        action="store_true",
        help="kill and restart redis-server mid-run",
    )
    parser.add_argument(
        "--cut-sockets",
        action="store_true",
        help="cut watcher sockets mid-run and reconnect them",
    )
    parser.add_argument(
        "--lossy",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="drop this fraction of change messages",
    )
    parser.add_argument(
        "--no-resync",
        dest="resync",
        action="store_false",
        help="LIVE_RESYNC=False on the servers",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rate", type=float, default=300.0, help="writes per second (all writers)"
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=3.0,
        help="seconds without frames that end the run",
    )
    parser.add_argument(
        "--fault-at",
        type=float,
        help="seconds into the writes (default: 30 %% of them)",
    )
    parser.add_argument(
        "--fault-for", type=float, help="seconds Redis stays down / sockets stay cut"
    )
    parser.add_argument("--workdir", type=Path, help="where the database and logs go")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="reconnect by re-reading every watch, never by resume",
    )
    parser.add_argument(
        "--show", type=int, default=10, help="divergent rows to print (default 10)"
    )
    args = vars(parser.parse_args(argv))
    show = args.pop("show")
    return Config(**args), show


def main(argv: list[str] | None = None) -> int:
    config, show = parse_args(argv)
    try:
        result = run_stress(config)
    except (RuntimeError, ValueError, TimeoutError) as exc:
        print(f"stress: {exc}", file=sys.stderr)
        return 2
    print(result.report(show), flush=True)
    if result.divergences:
        return 1
    return 0 if result.ok else 2


if __name__ == "__main__":
    sys.exit(main())

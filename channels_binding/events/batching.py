"""Many requests' database work in one worker-thread hop.

``database_sync_to_async`` runs every ORM call of a process on one shared thread.
Each call is a round trip between the event loop and that thread (a queued work
item, a wake-up of the loop, a GIL hand-over), and under load the round trips cost
more than the queries: with 50 connections the thread was idle most of the time
while requests waited for it (see docs/benchmarks.rst).

So the :class:`~.consumers.AsyncConsumer` does not hop per request. It hands its
binding to the event loop's :class:`Batcher`; the batcher takes every request
waiting at that moment into one hop, where they run one after the other, as they
would have anyway on the shared thread. Requests that arrive during the hop wait
for the next one. Nothing waits for a batch to fill: one request alone runs at
once.

Inside a batch, consecutive ``retrieve``\\ s of one binding class that see the same
rows (equal :meth:`~.bindings.GenericBinding.shared_rows_key` and context
variables) are read with one ``pk__in`` query instead of one query each;
permissions are checked per request first, and per object after, exactly as for a
lone retrieve. Any other request between them ends the run, so a read never
overtakes a write sent before it. Consecutive identical lists and searches that
see the same rows (:meth:`~.bindings.GenericBinding.can_share_page`) read, count
and serialize their page once (:func:`share_pages`).

Sharing a trip changes nothing else a request can see: each runs in its own
request task's context (context variables, the active language and time zone),
gets its own model instance, and fails alone. Its reply is sent as soon as its
run of requests is done, not when the whole trip is; a request whose client left
before the trip does not run.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async

try:  # asgiref 3.11+: Local data is tagged with its thread, moved explicitly
    from asgiref.sync import _restore_context
except ImportError:  # pragma: no cover - older asgiref shares Local data anyway
    _restore_context = None

_batchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: ``(binding, the context of its request task)``
Entry = tuple[Any, contextvars.Context]
#: ``(succeeded, result or exception)``
Outcome = tuple[bool, Any]


class Batcher:
    """The requests of one event loop waiting for the database thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: list[tuple[Any, contextvars.Context, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    @classmethod
    def current(cls) -> Batcher:
        loop = asyncio.get_running_loop()
        batcher = _batchers.get(loop)
        if batcher is None:
            batcher = _batchers[loop] = cls(loop)
        return batcher

    def run(self, binding: Any) -> asyncio.Future:
        """A future of ``binding.run()``'s result, run in a coming trip, in the
        context of the calling task."""
        future = self.loop.create_future()
        self.waiting.append((binding, contextvars.copy_context(), future))
        if self.task is None:
            # In a context of its own, as the hub's tasks: the trips must not run
            # in, or change, the context of the request that happened to start them.
            # (A task copies the context it is created in; create_task(context=)
            # is Python 3.11+.)
            self.task = contextvars.Context().run(self.loop.create_task, self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                # A request cancelled while it waited (its client left) does not run.
                batch = [entry for entry in self.waiting if not entry[2].done()]
                self.waiting = []
                if not batch:
                    continue
                futures = [future for _, _, future in batch]
                try:
                    await database_sync_to_async(run_batch)(
                        [(binding, context) for binding, context, _ in batch],
                        self._reporter(futures),
                    )
                except asyncio.CancelledError:  # the loop is shutting down
                    for future in futures + [entry[2] for entry in self.waiting]:
                        future.cancel()
                    raise
                except BaseException as exc:  # the trip itself failed
                    for future in futures:
                        _settle(future, (False, exc))
        finally:
            self.task = None

    def _reporter(self, futures: list[asyncio.Future]) -> Callable:
        def report(start: int, outcomes: list[Outcome]) -> None:
            # From the database thread: settle these futures on the loop now,
            # rather than when the whole trip is over.
            try:
                self.loop.call_soon_threadsafe(
                    _settle_all, futures[start : start + len(outcomes)], outcomes
                )
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        return report


def _settle_all(futures: list[asyncio.Future], outcomes: list[Outcome]) -> None:
    for future, outcome in zip(futures, outcomes, strict=True):
        try:
            _settle(future, outcome)
        except Exception as exc:  # never leave a request without an answer
            if not future.done():
                future.set_exception(RuntimeError(f"Cannot settle a request: {exc}"))


def _settle(future: asyncio.Future, outcome: Outcome) -> None:
    if future.done():  # its request was cancelled
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    elif isinstance(value, Exception) and not isinstance(value, StopIteration):
        future.set_exception(value)
    else:
        # A BaseException (a CancelledError out of async_to_sync, SystemExit),
        # or a StopIteration, which a future cannot hold, is this request's
        # failure, answered as a server error: it must not look like a
        # cancellation of the request task, nor stop the others.
        error = RuntimeError(f"{type(value).__name__} raised while answering")
        error.__cause__ = value
        future.set_exception(error)


def run_batch(
    entries: list[Entry], report: Callable[[int, list[Outcome]], None] | None = None
) -> list[Outcome]:
    """Run each ``(binding, context)``'s request in this thread, in order, each
    in its own context; one request's failure is its own.

    Consecutive retrieves that may share a read (see :func:`share_reads`) run
    together: their permissions are checked first, then their objects are read at
    once, then each handler runs. Any other request runs alone, with its own
    ``run()``, so a retrieve sent after a write still reads what the write left.
    ``report(start, outcomes)`` is called after each run with its outcomes.
    """
    kinds = [_within(context, _kind, binding) for binding, context in entries]
    shareable = [kind is SHARED_READ for kind in kinds]
    contexts = _ContextKeys()
    share_pages(entries, kinds, contexts)
    outcomes: list[Outcome] = []
    start = 0
    while start < len(entries):
        end = start + 1
        if shareable[start]:
            while end < len(entries) and shareable[end]:
                end += 1
        if end - start == 1:
            done = [_call(entries[start], entries[start][0].run)]
        else:
            try:
                done = _run_together(entries[start:end], contexts)
            except BaseException as exc:  # a failure of the run itself: its own
                done = [(False, exc)] * (end - start)
        outcomes.extend(done)
        if report is not None:
            report(start, done)
        start = end
    return outcomes


def _within(context: contextvars.Context, fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` in a request's context, on this thread, as
    ``sync_to_async`` would run it there (see :func:`_enter`)."""
    return context.run(_enter, context, fn, args)


def _enter(context: contextvars.Context, fn: Callable, args: tuple) -> Any:
    # What sync_to_async does on its worker thread: make the context's asgiref
    # ``Local`` data visible on this thread (it is tagged with the thread that
    # set it), and mark the thread as the one sync code runs on.
    if _restore_context is not None:
        _restore_context(context)
    SyncToAsync.deadlock_context.set(True)
    return fn(*args)


def _call(entry: Entry, fn: Callable[[], Any]) -> Outcome:
    try:
        return (True, _within(entry[1], fn))
    except BaseException as exc:
        return (False, exc)


#: What :func:`_kind` says of a retrieve that may share its read.
SHARED_READ = object()


def _kind(binding: Any) -> Any:
    """``SHARED_READ`` for a retrieve that may share its read (``can_share_reads()``),
    the page key of a list or search that may share its page, else ``None``.
    A binding whose checks fail shares nothing: its own run meets the problem."""
    try:
        if binding.can_share_reads():
            return SHARED_READ
        return _page_key(binding)
    except Exception:
        return None


class _ContextKeys(dict):
    """:func:`_context_key` of each request's context, computed once a trip."""

    def of(self, context: contextvars.Context) -> frozenset:
        key = self.get(id(context))
        if key is None:
            key = self[id(context)] = _context_key(context)
        return key


def _run_together(entries: list[Entry], contexts: _ContextKeys) -> list[Outcome]:
    outcomes: list[Outcome] = [(True, None)] * len(entries)
    admitted = []
    for i, entry in enumerate(entries):
        outcome = _call(entry, entry[0].initial)
        if outcome[0]:
            admitted.append(i)
        else:
            outcomes[i] = outcome
    if len(admitted) > 1:
        share_reads([entries[i] for i in admitted], contexts)
    for i in admitted:
        outcomes[i] = _call(entries[i], entries[i][0].run_handler)
    return outcomes


def share_reads(entries: list[Entry], contexts: _ContextKeys | None = None) -> None:
    """Read the objects of concurrent retrieves (each ``can_share_reads()``) with
    one query per group of bindings that see the same rows, in the first one's
    context; each binding finds its own object in ``shared_objects`` (see
    :meth:`~.bindings.GenericBinding.get_object`). A binding whose object was not
    found reads on its own."""
    groups: dict[Any, list] = defaultdict(list)
    contexts = _ContextKeys() if contexts is None else contexts
    for binding, context in entries:
        try:
            key, rows = _within(context, _share_key, binding)
            groups[type(binding), rows, contexts.of(context)].append(
                (binding, context, key)
            )
        except Exception:
            continue  # it reads alone; its own get_object() meets any problem
    for members in groups.values():
        if len(members) < 2:
            continue
        first, context, _ = members[0]
        keys = {key for _, _, key in members}
        try:
            objects = _within(context, _read, first, keys)
        except Exception:
            continue  # each request reads on its own and meets its own error
        given: set = set()
        for binding, _, key in members:
            obj = objects.get(key)
            if obj is None:
                continue
            if key in given:
                # Never one instance for two requests: a handler or serializer
                # may write on it (cheaper than reading it again).
                try:
                    obj = copy.deepcopy(obj)
                except Exception:
                    continue  # it reads alone
            given.add(key)
            binding.shared_objects = {key: obj}


def share_pages(entries: list[Entry], kinds: list[Any], contexts: _ContextKeys) -> None:
    """Let consecutive identical lists and searches (each ``can_share_page()``)
    of a trip read their page once: the first reads and serializes it, the
    others take its count, rows and objects (see :func:`.pagination.paginate`).
    They run one after the other with nothing between them, so the page is
    what each would have read. Any other request ends the sharing: a list
    after a write reads again. ``kinds`` are each entry's :func:`_kind`."""
    pages: dict | None = None
    for (binding, context), key in zip(entries, kinds, strict=True):
        if key is None or key is SHARED_READ:
            pages = None
            continue
        if pages is None:
            pages = {}
        binding.shared_pages = (pages, (key, contexts.of(context)))


def _page_key(binding: Any) -> Any:
    return binding.shared_page_key() if binding.can_share_page() else None


def _context_key(context: contextvars.Context) -> frozenset:
    """Requests share a read only if every context variable holds the same
    object for them: a manager may read one (a tenant set by middleware)."""
    return frozenset((var, _identity(value)) for var, value in context.items())


def _identity(value: Any) -> Any:
    # asgiref's ``Local`` keeps its attributes in one context variable, in a
    # storage object it copies for every connection: compare what it holds.
    data = getattr(value, "data", None)
    if type(value).__module__ == "asgiref.local" and isinstance(data, dict):
        return frozenset((key, id(item)) for key, item in data.items())
    return id(value)


def _share_key(binding: Any) -> tuple[Any, Any]:
    return binding.shared_lookup(), binding.shared_rows_key()


def _read(binding: Any, keys: set) -> dict[Any, Any]:
    return {obj.pk: obj for obj in binding.get_queryset().filter(pk__in=keys)}

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
rows (equal :meth:`~.watching.LiveMixin.get_visibility_key`) are read with one
``pk__in`` query instead of one query each; permissions are checked per request
first, and per object after, exactly as for a lone retrieve. Any other request
between them ends the run, so a read never overtakes a write sent before it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from typing import Any

from channels.db import database_sync_to_async

_batchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Batcher:
    """The requests of one event loop waiting for the database thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: list[tuple[Any, asyncio.Future]] = []
        self.running = False

    @classmethod
    def current(cls) -> Batcher:
        loop = asyncio.get_running_loop()
        batcher = _batchers.get(loop)
        if batcher is None:
            batcher = _batchers[loop] = cls(loop)
        return batcher

    def run(self, binding: Any) -> asyncio.Future:
        """A future of ``binding.run()``'s result, run in a coming hop."""
        future = self.loop.create_future()
        self.waiting.append((binding, future))
        if not self.running:
            self.running = True
            self.loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                try:
                    outcomes = await database_sync_to_async(run_batch)(
                        [binding for binding, _ in batch]
                    )
                except BaseException as exc:  # the hop itself failed
                    outcomes = [(False, exc)] * len(batch)
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():  # its request was cancelled
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self.running = False


def run_batch(bindings: list) -> list[tuple[bool, Any]]:
    """Run each binding's request in this thread, in order; one request's failure
    is its own.

    Consecutive retrieves that may share a read (see :func:`share_reads`) run
    together: their permissions are checked first, then their objects are read at
    once, then each handler runs. A request that may write ends a run, so a
    retrieve sent after a write still reads what the write left.
    """
    outcomes: list[tuple[bool, Any]] = []
    start = 0
    while start < len(bindings):
        end = start + 1
        if _may_share(bindings[start]):
            while end < len(bindings) and _may_share(bindings[end]):
                end += 1
        outcomes.extend(_run_together(bindings[start:end]))
        start = end
    return outcomes


def _may_share(binding: Any) -> bool:
    try:
        return bool(binding.can_share_reads())
    except Exception:
        return False  # its own get_object() reports the problem


def _run_together(bindings: list) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = [(True, None)] * len(bindings)
    admitted = []
    for i, binding in enumerate(bindings):
        try:
            binding.initial()
        except Exception as exc:
            outcomes[i] = (False, exc)
        else:
            admitted.append(i)
    if len(admitted) > 1:
        share_reads([bindings[i] for i in admitted])
    for i in admitted:
        try:
            outcomes[i] = (True, bindings[i].run_handler())
        except Exception as exc:
            outcomes[i] = (False, exc)
    return outcomes


def share_reads(bindings: list) -> None:
    """Read the objects of concurrent retrieves (each ``can_share_reads()``) with
    one query per group of bindings that see the same rows; each binding finds its
    object in ``shared_objects`` (see :meth:`~.bindings.GenericBinding.get_object`)."""
    groups: dict[Any, list] = defaultdict(list)
    for binding in bindings:
        try:
            key = binding.shared_lookup()
            groups[type(binding), binding.get_visibility_key()].append((binding, key))
        except Exception:
            continue  # its own get_object() reports the problem
    for members in groups.values():
        if len(members) < 2:
            continue
        first = members[0][0]
        try:
            queryset = first.get_queryset().filter(pk__in={key for _, key in members})
            objects = {obj.pk: obj for obj in queryset}
        except Exception:
            continue  # each request reads on its own and meets its own error
        for binding, _ in members:
            binding.shared_objects = objects

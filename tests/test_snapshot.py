"""A push shows a state its watcher may see: which rows a watcher may see (the
probes) and what they contain (the read) come from one state of the database.

The interleaving is forced: the probes run, then another thread, on its own
database connection, gives bob's note to alice and edits it, then the rows are
read. Before the fix the read showed alice's note to bob's watchers. Where the
visibility is decided from the rows read (live/matching.py), the write comes
after that read instead."""

import asyncio
import json
import threading
import time

import pytest
from django.db import OperationalError, connection

from channels_binding.bindings import AsyncBinding
from channels_binding.live import announce, pushes
from channels_binding.live.pushes import compute_pushes
from channels_binding.live.subscriptions import Subscription, SubscriptionIndex
from channels_binding.registry import registry
from tests.shop.models import Note
from tests.test_live import orm, save

pytestmark = pytest.mark.django_db(transaction=True)


class Interleaved:
    """Wraps ``real`` (``run_probes`` or the read of the rows): after its first
    call, a write on another connection, waited for briefly (SQLite may hold it
    until the push's read is done)."""

    def __init__(self, real, write):
        self.write = write
        self.thread = None
        self.real = real

    def __call__(self, *args, **kwargs):
        found = self.real(*args, **kwargs)
        if self.thread is None:
            self.thread = threading.Thread(target=self.commit)
            self.thread.start()
            self.thread.join(0.5)
        return found

    def commit(self):
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    return self.write()
                except OperationalError:
                    # The shared in-memory test database refuses a write to a
                    # table a read transaction holds, rather than waiting.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        finally:
            connection.close()


@pytest.mark.parametrize("decided", ["in SQL", "from the rows"])
async def test_a_commit_between_the_probes_and_the_read_is_not_pushed(
    communicator, monkeypatch, user, other_user, decided
):
    alice, bob = user, other_user
    note = await orm(Note.objects.create, owner=bob, text="bob's")

    def give_to_alice():
        # No signal: the second change is announced below, once it committed.
        Note.objects.filter(pk=note.pk).update(owner=alice, text="alice's now")

    if decided == "in SQL":
        monkeypatch.setattr(pushes.matching, "condition", lambda *args: None)
        hook = Interleaved(pushes.run_probes, give_to_alice)
        monkeypatch.setattr(pushes, "run_probes", hook)
    else:
        hook = Interleaved(pushes._Plan.fetch, give_to_alice)
        monkeypatch.setattr(pushes._Plan, "fetch", lambda *args: hook(*args))
    async with communicator(bob) as ws:
        reply = await ws.request("shop.Note.list#list")
        assert [row["id"] for row in reply["data"]["rows"]] == [note.pk]
        reply = await ws.request("shop.Note.retrieve#one", {"id": note.pk})
        assert reply["data"]["owner"] == bob.pk
        await orm(save, Note, note.pk, text="bob's, edited")
        frames = [await ws.receive_json_from(3) for _ in range(2)]
        assert hook.thread is not None
        await asyncio.to_thread(hook.thread.join, 10)
        assert not hook.thread.is_alive()
        await orm(announce, Note, [note.pk])
        last = {}
        while set(last) != {"list", "one"} or any(
            event.startswith("shop.Note.retrieve") for event in last.values()
        ):
            frame = await ws.receive_json_from(3)
            frames.append(frame)
            last[frame["event"].partition("#")[2]] = frame["event"]
    foreign = [
        frame
        for frame in frames
        if ".retrieve" in frame["event"] and frame["data"]["owner"] != bob.pk
    ]
    assert foreign == [], frames
    before = {"id": note.pk, "text": "bob's, edited", "owner": bob.pk}
    for frame in frames[:2]:  # bob's note as it was when its push was computed
        assert frame["event"].startswith("shop.Note.retrieve"), frames
        assert frame["data"] == before, frames
    assert last == {"list": "shop.Note.delete#list", "one": "shop.Note.delete#one"}


class Watcher:
    """A connection as the hub sees it (tests/test_pushes.py)."""

    def __init__(self, user):
        self.user = user
        self.auth = None


def test_a_probe_failing_in_the_database_does_not_stop_the_others(user, other_user):
    """The union of probes fails, and so does one probe alone; the others still
    read in the same transaction (on PostgreSQL a failed statement would end it
    but for a savepoint)."""

    class Failing(AsyncBinding):
        model = Note
        stream = "shop.failing"
        fields = ["id", "text"]

        def get_queryset(self):
            # through a join: probed in SQL (live/matching.py)
            user = self.request.user
            queryset = Note.objects.filter(owner__username=user.username)
            if user.username == "bob":
                return queryset.extra(where=["no_such_function(1) = 1"])
            return queryset

    try:
        notes = [
            Note.objects.create(owner=owner, text=owner.username)
            for owner in (user, other_user)
        ]
        index = SubscriptionIndex()
        for owner in (other_user, user):
            index.add(Subscription(Watcher(owner), "shop.failing", None, filters={}))
        frames = compute_pushes(index, "shop.failing", [note.pk for note in notes])
        received = [
            (watcher.user.username, json.loads(text)) for watcher, text in frames
        ]
        assert received == [
            (
                "alice",
                {
                    "event": "shop.failing.retrieve",
                    "data": {"id": notes[0].pk, "text": "alice"},
                },
            )
        ]
    finally:
        registry.unregister("shop.failing")


async def test_a_commit_between_a_pages_count_and_its_rows_is_not_half_seen(
    communicator, monkeypatch, user
):
    """A list's ``count`` and ``rows`` come from one state: a note created by
    another connection right after the count is in neither or in both."""
    from django.db.models import QuerySet

    for text in ("a", "b"):
        await orm(Note.objects.create, owner=user, text=text)

    def create_one():
        Note.objects.create(owner=user, text="between")

    hook = Interleaved(QuerySet.count, create_one)
    monkeypatch.setattr(QuerySet, "count", lambda *args: hook(*args))
    async with communicator(user) as ws:
        reply = await ws.request("shop.Note.list")
        assert hook.thread is not None
        await asyncio.to_thread(hook.thread.join, 10)
        assert not hook.thread.is_alive()
        page = reply["data"]
        assert page["count"] == len(page["rows"]), page
        monkeypatch.undo()
        again = (await ws.request("shop.Note.list"))["data"]
        assert again["count"] == len(again["rows"]) == 3

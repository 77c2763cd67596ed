"""Turning a batch of changed primary keys into push frames for local watchers.

Runs in the database worker thread, once per stream per batch, for every watcher of
this process. The cost does not grow with the number of sockets:

* Watchers are grouped by **visibility key** (``binding.get_visibility_key()``: one
  key for everybody when ``get_queryset()`` is not overridden, one per user
  otherwise). Which changed rows each key may see, and which rows match each watched
  collection query, is asked in **probe** queries: one probe per key and one per
  distinct (key, filters, query), sent ``UNION ALL``-ed in chunks, so a change costs
  one query per ``PROBES_PER_QUERY`` probes.
* The visible rows are read once (``get_push_queryset()``, with the serializer's
  joins) and serialized and JSON-encoded once per visibility key.
* The probes, the read and the serialization see one state of the database (one
  read transaction, see :mod:`.snapshot`): a commit between them cannot show a
  watcher a row its probe did not let it see.
* Each watcher then costs a permission check in memory and a string concatenation.

A watcher is sent ``<stream>.retrieve`` for a row it may see that changed (and, for
a collection, that matches its query), and ``<stream>.delete`` with the id for a row
it had seen that is gone, no longer visible to it, or no longer matches. Nothing
else: not even an id of a row it never saw.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.db import router
from django.db.models import IntegerField, Value

from ..events import protocol
from ..events.request import BindingRequest
from ..registry import registry
from . import matching
from .snapshot import Snapshot, guarded
from .subscriptions import Subscription, SubscriptionIndex, pk_key

logger = logging.getLogger("channels_binding")

PROBES_PER_QUERY = 100


def compute_pushes(
    index: SubscriptionIndex, stream: str, pks: list[Any]
) -> list[tuple[Any, str]]:
    """``[(consumer, frame_text), ...]`` for a batch of changed keys of ``stream``."""
    if stream not in registry:
        return []
    keys = {pk_key(pk): pk for pk in pks}
    objects, collections = index.watchers(stream, set(keys))
    if not objects and not collections:
        return []
    return _Plan(registry.get(stream), stream, keys).frames(objects, collections)


class _Plan:
    def __init__(self, binding_class, stream: str, keys: dict[str, Any]) -> None:
        self.binding_class = binding_class
        self.stream = stream
        self.keys = keys
        self.readers: dict[Any, Any] = {}  # consumer → binding, or None if refused
        self.vkeys: dict[int, Any] = {}  # id(reader) → its visibility key
        self.renders: dict[int, Any] = {}  # id(reader) → its rendering key
        self.askers: dict[int, tuple] = {}  # id(reader) → who asks (see may_read)
        self.allowed: dict[tuple, bool] = {}
        self.texts: dict[tuple, str] = {}  # (event, render, key) → frame text

    def reader(self, consumer: Any):
        """A binding answering a ``retrieve`` by this watcher's user, or ``None``
        when the permission classes refuse that user outright."""
        if consumer not in self.readers:
            request = BindingRequest(
                event=f"{self.stream}.retrieve",
                stream=self.stream,
                action="retrieve",
                user=consumer.user,
                auth=getattr(consumer, "auth", None),
                connection=consumer,
            )
            binding = self.binding_class(request)
            try:
                binding.check_permissions()
            except Exception:
                binding = None
            if binding is not None:
                try:
                    vkey = self.vkeys[id(binding)] = binding.get_visibility_key()
                    self.askers[id(binding)] = _asker(binding, vkey)
                    self.renders[id(binding)] = binding._rendering_key(vkey)
                except Exception:
                    logger.exception("get_visibility_key() failed on %s", self.stream)
                    binding = None  # sees nothing: it only ever gets deletes
            self.readers[consumer] = binding
        return self.readers[consumer]

    def frames(self, objects: list[Subscription], collections: list[Subscription]):
        """Every watcher's frames, from one state of the database: which rows
        each may see and what they contain are read in one snapshot."""
        with Snapshot() as snapshot:
            snapshot.cover(router.db_for_read(self.binding_class.model))
            return self._frames(objects, collections, snapshot)

    def _frames(self, objects, collections, snapshot: Snapshot):
        subs = [(sub, self.reader(sub.consumer)) for sub in objects + collections]
        probes: dict[tuple, Any] = {}
        for sub, reader in subs:
            if reader is None:
                continue
            probe = self.probe_key(sub, reader)
            if probe not in probes:
                try:
                    probes[probe] = self.probe_queryset(sub, reader)
                except Exception:
                    # One broken subscription must not stop the stream's pushes:
                    # it matches nothing (so it only ever gets deletes).
                    logger.exception("Cannot check a subscription to %s", self.stream)
        rows = self.push_queryset(subs)
        for queryset in [*probes.values(), rows]:
            if queryset is not None:  # a router may send some elsewhere
                snapshot.cover(queryset.db)
        visible, instances = self.visibility(probes, rows)
        encoded: dict[tuple, str] = {}
        out: dict[Any, dict[str, str]] = defaultdict(dict)
        for sub, reader in subs:
            keys = [pk_key(sub.pk)] if sub.is_object else list(self.keys)
            matched = visible.get(self.probe_key(sub, reader), ()) if reader else ()
            for key in keys:
                if sub.reading and sub.held_back(key):
                    continue  # computed again once its reply is written
                instance = instances.get(key)
                if key in matched and instance and self.may_read(reader, instance):
                    render = self.renders[id(reader)]
                    if (render, key) not in encoded:
                        encoded[render, key] = protocol.encode(
                            reader.get_serializer(instance).data
                        )
                    event = sub.event("retrieve")
                    text = self.texts.get((event, render, key))
                    if text is None:
                        text = self.texts[event, render, key] = _frame(
                            event, encoded[render, key]
                        )
                    out[sub.consumer][event + "\0" + key] = text
                    sub.saw([instance.pk])
                elif key in sub.seen:
                    pk = sub.seen.pop(key)
                    event = sub.event("delete")
                    out[sub.consumer][event + "\0" + key] = _frame(
                        event, protocol.encode({"id": pk})
                    )
        return [
            (consumer, text)
            for consumer, frames in out.items()
            for text in frames.values()
        ]

    def visibility(self, probes: dict[tuple, Any], rows) -> tuple[dict, dict]:
        """``(visible, instances)``: the changed keys each probe contains, and
        the rows shown (by key). Probes that :mod:`.matching` can decide are
        answered from the changed rows, read first; the others in SQL."""
        trees = {}
        if rows is not None:
            model = self.binding_class.model
            for probe, queryset in probes.items():
                if queryset.db == rows.db:
                    tree = matching.condition(queryset, model)
                    if tree is not None:
                        trees[probe] = tree
        visible: dict[tuple, set[str]] = {}
        instances = self.fetch(rows, set(self.keys)) if trees else {}
        for probe, tree in trees.items():
            try:
                visible[probe] = {
                    key for key, row in instances.items() if matching.holds(tree, row)
                }
            except matching.Unsupported:
                pass  # a column deferred or of another type: asked in SQL
        asked = {probe: qs for probe, qs in probes.items() if probe not in visible}
        visible.update(run_probes(asked, list(self.keys.values())))
        if not trees:
            shown = set().union(*visible.values()) if visible else set()
            instances = self.fetch(rows, shown) if shown else {}
        return visible, instances

    def probe_key(self, sub: Subscription, reader) -> tuple:
        vkey = self.vkeys[id(reader)]
        if sub.is_object:
            return ("object", vkey)
        return ("collection", vkey, sub.query_key)

    def probe_queryset(self, sub: Subscription, reader):
        if sub.is_object:
            return reader.get_queryset()
        request = BindingRequest(
            event=f"{self.stream}.search",
            stream=self.stream,
            action="search",
            data={"filters": sub.filters, "query": sub.query},
            user=reader.request.user,
            auth=reader.request.auth,
            connection=reader.request.connection,
        )
        binding = self.binding_class(request)
        return binding.filter_queryset(binding.get_queryset())

    def push_queryset(self, subs):
        """Where the visible rows are read (not yet filtered), or ``None`` when
        no watcher may read any."""
        reader = next((reader for _, reader in subs if reader is not None), None)
        if reader is None:
            return None
        return reader.optimize_queryset(reader.get_push_queryset())

    def fetch(self, queryset, shown: set[str]) -> dict[str, Any]:
        queryset = queryset.filter(pk__in=[self.keys[k] for k in shown])
        return {pk_key(obj.pk): obj for obj in queryset}

    def may_read(self, reader, instance) -> bool:
        """The object permissions, checked once per row for the watchers that ask
        as the same user with the same credentials."""
        key = (self.askers[id(reader)], pk_key(instance.pk))
        if key not in self.allowed:
            try:
                reader.check_object_permissions(instance)
                self.allowed[key] = True
            except Exception:
                self.allowed[key] = False
        return self.allowed[key]


def _asker(binding, vkey: Any) -> tuple:
    """Who a reader asks as: its visibility key, its user and its credentials."""
    user, auth = binding.request.user, binding.request.auth
    return (
        vkey,
        type(user),
        getattr(user, "pk", None),
        bool(getattr(user, "is_authenticated", False)),
        None if auth is None else id(auth),
    )


def resync_pushes(index: SubscriptionIndex, stream: str) -> list[tuple[Any, str]]:
    """What brings every local watcher of ``stream`` back to the truth after
    changes may have been missed: an object's current state (``retrieve``, or
    ``delete`` if it is gone or hidden now), and for a collection a
    ``<stream>.resync`` frame that tells the client to read it again."""
    objects, collections = index.of_stream(stream)
    frames: list[tuple[Any, str]] = []
    if objects and stream in registry:
        keys = {pk_key(sub.pk): sub.pk for sub in objects}
        frames = _Plan(registry.get(stream), stream, keys).frames(objects, [])
    for sub in collections:
        data = protocol.encode({"filters": sub.filters or {}, "query": sub.query})
        frames.append((sub.consumer, _frame(sub.event("resync"), data)))
    return frames


def _rows(parts: list) -> list:
    """The rows of every probe: one UNION ALL query, or, where the querysets cannot
    be combined (slices, some backends), one query each; a probe that fails matches
    nothing rather than failing the others."""
    if not parts:
        return []
    try:
        with guarded(parts[0].db):
            return (
                list(parts[0].union(*parts[1:], all=True))
                if len(parts) > 1
                else list(parts[0])
            )
    except Exception:
        logger.debug("Probe union failed; probing one by one", exc_info=True)
    rows = []
    for part in parts:
        try:
            with guarded(part.db):
                rows.extend(list(part))
        except Exception:
            logger.exception("A visibility probe failed")
    return rows


def _frame(event: str, data_json: str) -> str:
    return '{"event":' + protocol.encode(event) + ',"data":' + data_json + "}"


def run_probes(probes: dict[tuple, Any], pks: list[Any]) -> dict[tuple, set[str]]:
    """Which of ``pks`` each probe queryset contains, in few queries."""
    found: dict[tuple, set[str]] = {key: set() for key in probes}
    items = list(probes.items())
    for start in range(0, len(items), PROBES_PER_QUERY):
        chunk = items[start : start + PROBES_PER_QUERY]
        parts = {}
        for number, (_, queryset) in enumerate(chunk):
            try:
                parts[number] = (
                    queryset.filter(pk__in=pks)
                    .order_by()
                    .annotate(_cb_probe=Value(number, output_field=IntegerField()))
                    .values_list("_cb_probe", "pk")
                )
            except Exception:
                logger.exception("A visibility probe cannot be built")
        for number, pk in _rows(list(parts.values())):
            found[chunk[number][0]].add(pk_key(pk))
    return found

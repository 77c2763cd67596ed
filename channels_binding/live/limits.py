"""How much one connection may watch.

Three limits, read from the settings each time a subscription is added, apply to
each connection (see docs/settings.rst, "Connections"):

* ``MAX_SUBSCRIPTION_BYTES``: the weight of everything it watches. A
  subscription weighs :data:`SUBSCRIPTION_BYTES`, plus its stream and hash, plus
  twice its target (the primary key, or the canonical JSON of ``filters`` and
  ``query``: the index keeps them as given and as that key), plus
  :data:`SEEN_ROW_BYTES` for each row it has shown its client. These figures are
  what CPython takes for them, rounded.
* ``MAX_COLLECTION_WATCHES`` (``ANONYMOUS_MAX_COLLECTION_WATCHES`` for an
  anonymous user): how many distinct collection queries (stream, ``filters`` and
  ``query``) it watches. Each costs one probe per change of its stream, whatever
  the number of hashes it is watched under.
* ``MAX_COLLECTION_LOOKUPS``: the lookups those probes carry, summed: one per
  filter (and one more per 16 items of a list), and one per search word and
  search field. This is what a change costs beyond the probe itself.

A subscription that would pass a limit is refused before it is added, and rows a
read would show beyond ``MAX_SUBSCRIPTION_BYTES`` refuse the read (see
:meth:`.subscriptions.SubscriptionIndex.add` and ``show``). Pushes are never
refused: rows that enter a watched collection count once shown, and a connection
they take past its budget adds nothing more until it unsubscribes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import Throttled

from ..exceptions import APIException
from ..filters import search_terms
from ..registry import registry
from ..settings import binding_settings

#: What one subscription takes in the index, whatever it watches (measured
#: with tracemalloc: 480 to 700 bytes).
SUBSCRIPTION_BYTES = 512
#: What one row a subscription has shown takes (its key and primary key in
#: ``seen``; measured: about 105 bytes).
SEEN_ROW_BYTES = 100


class SubscriptionsTooLarge(APIException):
    """The connection's subscriptions would pass ``MAX_SUBSCRIPTION_BYTES``."""

    status_code = 413
    default_detail = "Too much subscription state on this connection."
    default_code = "too_large"


def size(subscription: Any) -> int:
    """The weight of a subscription before it shows any row."""
    if subscription.is_object:
        target = str(subscription.pk)
    else:
        target = subscription.query_key
    return (
        SUBSCRIPTION_BYTES
        + _bytes(subscription.stream)
        + _bytes(subscription.hash or "")
        + 2 * _bytes(target)
    )


def _bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


#: A list value (``__in``) counts one lookup more per this many items: each
#: item is prepared and bound again for every change.
ITEMS_PER_LOOKUP = 16


def lookups(subscription: Any) -> int:
    """The lookups a collection subscription's probe carries: one per filter (and
    one more per :data:`ITEMS_PER_LOOKUP` items of a list), one per search word
    and search field."""
    if subscription.is_object:
        return 0
    count = 0
    for value in (subscription.filters or {}).values():
        count += 1
        if isinstance(value, list | tuple):
            count += len(value) // ITEMS_PER_LOOKUP
    if isinstance(subscription.query, str):
        stream = subscription.stream
        binding = registry.get(stream) if stream in registry else None
        fields = len(getattr(binding, "search_fields", None) or ()) or 1
        count += len(search_terms(subscription.query)) * fields
    return count


def _is_anonymous(consumer: Any) -> bool:
    user = getattr(consumer, "user", None)
    return not getattr(user, "is_authenticated", False)


def check_add(consumer: Any, kept: Iterable[Any], new: Any) -> None:
    """Raise if ``consumer``, holding ``kept``, may not add the subscription
    ``new``: ``Throttled`` (429) past a number, :class:`SubscriptionsTooLarge`
    (413) past ``MAX_SUBSCRIPTION_BYTES``."""
    kept = list(kept)
    if not new.is_object:
        watches = {
            (sub.stream, sub.query_key): sub for sub in kept if not sub.is_object
        }
        if (new.stream, new.query_key) not in watches:
            _check_watches(consumer, watches.values(), new)
    limit = binding_settings.MAX_SUBSCRIPTION_BYTES
    if limit is not None and sum(sub.weight for sub in kept) + new.size > limit:
        raise too_large(limit)


def _check_watches(consumer: Any, watches: Iterable[Any], new: Any) -> None:
    watches = list(watches)
    limit = (
        binding_settings.ANONYMOUS_MAX_COLLECTION_WATCHES
        if _is_anonymous(consumer)
        else binding_settings.MAX_COLLECTION_WATCHES
    )
    if limit is not None and len(watches) >= limit:
        raise Throttled(
            detail=f"Too many collection watches ({limit}) on this connection: "
            "unsubscribe from some first."
        )
    limit = binding_settings.MAX_COLLECTION_LOOKUPS
    if limit is not None and sum(sub.lookups for sub in watches) + new.lookups > limit:
        raise Throttled(
            detail=f"The collection watches of this connection would check each "
            f"change with more than {limit} lookups (a filter is one, a search "
            "word one per search field): unsubscribe from some first, or use "
            "fewer words."
        )


def check_rows(kept: Iterable[Any], rows: int) -> None:
    """Raise :class:`SubscriptionsTooLarge` if ``rows`` more shown rows would take
    the subscriptions ``kept`` past ``MAX_SUBSCRIPTION_BYTES``."""
    limit = binding_settings.MAX_SUBSCRIPTION_BYTES
    if limit is None or not rows:
        return
    if sum(sub.weight for sub in kept) + rows * SEEN_ROW_BYTES > limit:
        raise too_large(limit)


def too_large(limit: int) -> SubscriptionsTooLarge:
    return SubscriptionsTooLarge(
        f"The subscriptions of this connection would take more than {limit} "
        "bytes: unsubscribe from some first."
    )

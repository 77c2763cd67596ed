"""``page`` / ``limit`` paging of list and search replies."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet

from .exceptions import NotFound
from .filters import invalid
from .live.snapshot import Snapshot
from .settings import binding_settings

DIGITS = re.compile(r"[0-9]{1,18}")


def positive_int(value: Any, key: str) -> int:
    """An integer ≥ 1, given as a JSON number or (over HTTP) a string of digits."""
    if isinstance(value, str) and DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(key, "A positive integer is required.")
    return value


def paginate(binding: Any, queryset: QuerySet, data: dict) -> dict:
    """``{"page", "limit", "count", "rows"}`` for the requested page.

    ``limit`` above the maximum is lowered to it, and the reply says so. A page past
    the last one is a 404; an empty first page is an empty list.
    """
    page = positive_int(data.get("page", 1), "page")
    default = binding.page_size or binding_settings.DEFAULT_PAGE_SIZE
    limit = positive_int(data.get("limit", default), "limit")
    limit = min(limit, binding.max_page_size or binding_settings.MAX_PAGE_SIZE)
    shared = getattr(binding, "shared_pages", None)
    if shared is not None:
        # An identical request of this trip read this page already: the same
        # rows, serialized the same way (see batching.share_pages).
        pages, key = shared[0], (shared[1], page, limit)
        if key in pages:
            count, binding.page_objects, rows = pages[key]
            return {"page": page, "limit": limit, "count": count, "rows": rows}
    # The count, the rows and what serializing them reads, from one state of
    # the database: a write between them cannot make ``count`` disagree with
    # the rows (see live/snapshot.py for what each database needs).
    with Snapshot() as snapshot:
        snapshot.cover(queryset.db)
        count = queryset.count()
        offset = (page - 1) * limit
        if page > 1 and offset >= count:
            last = max(1, -(-count // limit))
            raise NotFound(f"Page {page} is past the last page ({last}).")
        binding.page_objects = list(queryset[offset : offset + limit])
        rows = binding.get_serializer(binding.page_objects, many=True).data
    if shared is not None:
        pages[key] = (count, binding.page_objects, rows)
    return {"page": page, "limit": limit, "count": count, "rows": rows}

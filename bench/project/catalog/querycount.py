"""Count every SQL query the server process runs (``BENCH_COUNT_QUERIES=1``).

Each new database connection gets an ``execute_wrapper`` that increments one
process-wide counter; ``GET /bench/queries/`` reports it. The load client reads it
before and after a change, so the count covers everything the server did for that
change, in whichever thread it ran. The saving view subtracts its own queries,
counted in its thread alone (Django runs each HTTP request in a thread of its own,
so the hub may compute pushes in another thread while the view is still running).
"""

from __future__ import annotations

import threading

from django.db.backends.signals import connection_created

_lock = threading.Lock()
_count = 0
_local = threading.local()


def count() -> int:
    """Queries run by the process."""
    return _count


def count_here() -> int:
    """Queries run by the current thread."""
    return getattr(_local, "count", 0)


def _counter(execute, sql, params, many, context):
    global _count
    with _lock:
        _count += 1
    _local.count = count_here() + 1
    return execute(sql, params, many, context)


def _wrap(sender, connection, **kwargs) -> None:
    if _counter not in connection.execute_wrappers:
        connection.execute_wrappers.append(_counter)


def install() -> None:
    connection_created.connect(_wrap, dispatch_uid="bench.querycount")

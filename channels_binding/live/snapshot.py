"""One state of the database for everything a push computation reads.

A push decides which changed rows each watcher may see (the probes), then reads
those rows once for every watcher and serializes them. Read in separate
transactions, a commit in between (a note given to another user) would be pushed
to a watcher whose probe saw the state before it. So the computation reads in one
transaction that sees one state from its first read to its end:

* SQLite: any transaction does (in WAL mode from a snapshot; with a rollback
  journal its shared lock keeps writers from committing until it ends).
* PostgreSQL and MySQL: Django opens their connections READ COMMITTED, where each
  statement sees the latest commit, so the transaction is made REPEATABLE READ
  (unless the connection is configured REPEATABLE READ or SERIALIZABLE already).
  Reading at that level never fails with a serialization error.

Inside a transaction of its caller, the computation reads at the caller's level.
The transaction ends with the computation: it is never held open longer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import nullcontext

from django.db import connections, transaction

#: Where READ COMMITTED is the default of Django's backend.
RAISE_ISOLATION = {"postgresql", "mysql"}
STRONG_ENOUGH = {"repeatable read", "serializable"}


class Snapshot(contextlib.ExitStack):
    """Read transactions, one per database alias :meth:`cover` is given, ended
    together on exit."""

    def __init__(self) -> None:
        super().__init__()
        self.aliases: set[str] = set()

    def cover(self, alias: str) -> None:
        if alias not in self.aliases:
            self.aliases.add(alias)
            self.enter_context(_read_transaction(alias))


@contextlib.contextmanager
def _read_transaction(alias: str) -> Iterator[None]:
    connection = connections[alias]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=alias):
        if outermost and connection.vendor in RAISE_ISOLATION:
            if _isolation(connection) not in STRONG_ENOUGH:
                # The first statement of the transaction (on MySQL, the one before
                # it): it sets the level of this transaction only.
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _isolation(connection) -> str:
    """The connection's configured level as ``"read committed"`` etc., or ``""``
    when it is the server's default (MySQL with ``isolation_level: None``)."""
    level = getattr(connection, "isolation_level", None)
    name = getattr(level, "name", level)  # psycopg's IsolationLevel, or MySQL's text
    return str(name or "").replace("_", " ").lower()


def guarded(alias: str):
    """Around a statement that may fail while the read goes on: a savepoint where a
    failed statement would end the whole transaction (PostgreSQL), else nothing."""
    connection = connections[alias]
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        return transaction.atomic(using=alias)
    return nullcontext()

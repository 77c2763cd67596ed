"""Numbered pushes, kept for a resume.

A client asks for it with ``?resume=1`` in the websocket URL (the shipped client
does). Every frame pushed to such a connection (a subscription's push, a resync, a
notification; never a reply) gets ``"pos"``, one more than the previous one, and
the latest of them (``RESUME_BUFFER_BYTES`` in all) are kept. A client that lost
its socket sends ``resume`` with its token and the last ``pos`` it received; the
frames after it are sent again, and the old connection's subscriptions carry on
(see :meth:`.connection.ConnectionMixin.event_resume`).
"""

from __future__ import annotations

import secrets
from collections import deque
from typing import Any
from urllib.parse import parse_qs


def wants_resume(scope: dict[str, Any]) -> bool:
    """Whether the handshake asked for numbered pushes (``?resume=1``)."""
    query = scope.get("query_string", b"").decode("latin-1")
    return parse_qs(query).get("resume", [""])[-1] in ("1", "true")


class Replay:
    def __init__(self, limit: int) -> None:
        self.token = secrets.token_urlsafe(18)
        self.pos = 0
        self.limit = limit
        self.size = 0
        self.forgotten = 0  # frames up to this pos are no longer kept
        self._frames: deque[tuple[int, str]] = deque()

    def number(self, text: str) -> str:
        """The frame with its position, kept for a resume."""
        self.pos += 1
        text = f'{text[:-1]},"pos":{self.pos}}}'
        self._frames.append((self.pos, text))
        self.size += len(text)
        while self.size > self.limit:
            pos, old = self._frames.popleft()
            self.size -= len(old)
            self.forgotten = pos
        return text

    def since(self, pos: int) -> list[str] | None:
        """The frames after ``pos``, or ``None`` if some are no longer kept (or
        ``pos`` was never sent)."""
        if not self.forgotten <= pos <= self.pos:
            return None
        return [text for number, text in self._frames if number > pos]

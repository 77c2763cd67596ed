"""Frames on their way to one socket: in order, written by one task, bounded.

Every frame for a connection (replies, pushes, notifications) is put here and a
writer task hands them to the server one by one. Whoever produced a frame never
waits for a slow socket, so the hub's fan-out to thousands of sockets is not held up
by one client that stopped reading. When more than ``OUTGOING_BUFFER_BYTES`` are
waiting (a frame alone may be larger), the connection is given up: the outbox
calls ``on_overflow`` and drops everything after.

How much a server itself buffers differs: uvicorn waits for the socket to drain, so
this bound is reached and enforced; daphne accepts every frame at once and buffers
it in Twisted, where no ASGI application can see or bound it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

logger = logging.getLogger("channels_binding")


class Outbox:
    def __init__(
        self,
        write: Callable[[str], Awaitable[None]],
        on_overflow: Callable[[], None],
        limit: int,
    ) -> None:
        self._write = write
        self._on_overflow = on_overflow
        self.limit = limit
        self.size = 0
        self._largest = 0  # the largest frame put since the queue was last empty
        self.closed = False
        self._frames: deque[str] = deque()
        self._writer: asyncio.Task | None = None

    def put(self, text: str) -> None:
        """Queue a frame (from the event loop's thread)."""
        if self.closed:
            return
        # ``size`` counts the frames waiting, not the one being written. The limit
        # bounds what piles up behind a socket that is not read, leaving out the
        # largest frame: one frame larger than the limit (a big page) is sent.
        largest = max(self._largest, len(text))
        if self.size + len(text) - largest > self.limit:
            self.close()
            self._on_overflow()
            return
        self._largest = largest
        self.size += len(text)
        self._frames.append(text)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def write(self, text: str) -> None:
        """Write a frame from a task of the connection's own (a reply): at once if
        nothing is waiting or being written, the caller waiting for the socket;
        queued behind the others otherwise. Saves a writer task per reply."""
        if self._writer is not None or self.closed:
            self.put(text)
            return
        self._writer = asyncio.current_task()
        try:
            await self._write(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.debug("Write to a closing socket failed", exc_info=True)
            self.close()
        finally:
            self._writer = None
            if self._frames and not self.closed:
                # Frames put while this one was written.
                self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._frames:
                text = self._frames.popleft()
                self.size -= len(text)
                if not self._frames:
                    self._largest = 0
                await self._write(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.debug("Write to a closing socket failed", exc_info=True)
            self.close()
        finally:
            self._writer = None

    def close(self) -> None:
        """Drop what is waiting and refuse what comes; stop the writer."""
        self.closed = True
        self._frames.clear()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()

"""Websocket transports: one JSON frame in, one reply frame out.

``AsyncConsumer`` answers several requests of one connection concurrently (up to
``MAX_CONCURRENT_REQUESTS``; replies carry the request's ``request_id``), each in a
single worker-thread hop for its database work. ``SyncConsumer`` answers them one at
a time in Channels' worker thread. Both serve the same bindings with the same frames;
what a connection is (identity, groups, connection-level events) is in
:mod:`.connection`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.sessions import InstanceSessionWrapper

from ..events import protocol
from ..events.protocol import Frame
from ..exceptions import ServerError, Throttled
from ..live.hub import Hub
from ..settings import binding_settings
from .connection import CLOSE_NOT_AUTHENTICATED, ConnectionMixin
from .outbox import Outbox
from .replay import Replay, wants_resume

logger = logging.getLogger("channels_binding")

#: Close code for a connection whose unsent frames passed OUTGOING_BUFFER_BYTES:
#: the client stopped reading (4000 + HTTP 408).
CLOSE_TOO_SLOW = 4008

#: Requests that may wait for a free slot, per running slot
#: (``MAX_CONCURRENT_REQUESTS``); a frame beyond them is answered 429 at once.
BACKLOG_FACTOR = 4

__all__ = ["AsyncConsumer", "SyncConsumer", "CLOSE_NOT_AUTHENTICATED", "CLOSE_TOO_SLOW"]


def frame_sender(send):
    """The send that frames go through: ``send`` without Channels' session
    wrappers (``AuthMiddlewareStack``), which act on HTTP responses only and cost
    a tenth of the server's time per pushed frame. Everything else, in
    particular the ``websocket.accept`` and ``close`` messages, goes through
    ``send`` itself."""
    while isinstance(getattr(send, "__self__", None), InstanceSessionWrapper):
        send = send.__self__.real_send
    return send


def encode_reply(frame: Frame, data: Any = None, exc: BaseException | None = None):
    if exc is None:
        try:
            return protocol.encode(protocol.reply(frame.event, data, frame))
        except (TypeError, ValueError):
            logger.error("Reply to %r is not JSON", frame.event, exc_info=True)
            exc = ServerError()
    return protocol.encode(protocol.error(frame.event, exc, frame))


class AsyncConsumer(ConnectionMixin, AsyncWebsocketConsumer):
    """The websocket consumer to mount: ``path("ws/", AsyncConsumer.as_asgi())``."""

    # No channel of its own: the process's hub is the only user of the channel
    # layer (see live/hub.py), so a layer outage cannot break the socket.
    channel_layer_alias = None

    async def __call__(self, scope, receive, send) -> None:
        self._send_frame = frame_sender(send)
        if self.channel_layer_alias is not None:
            return await super().__call__(scope, receive, send)
        # Channels' loop also listens to a channel-layer channel, so it waits on a
        # fresh task per message (``asyncio.wait``); this consumer has no channel
        # (its hub listens for it) and reads its socket directly.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict) -> None:
        # Channels awaits ``aclose_old_connections()`` (a thread hop) before every
        # message. Our database work already runs through ``database_sync_to_async``,
        # which closes stale connections in the worker thread, so the extra hop is
        # pure cost: it halves throughput (see PERF-NOTES).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    #: The numbered pushes kept for a resume; ``None`` when resume is off.
    replay: Replay | None = None
    #: The connection that resumed this one (its pushes go there).
    forward: Any = None
    #: Set once the ``connection`` frame is sent.
    is_open = False

    async def connect(self) -> None:
        if binding_settings.RESUME_SECONDS > 0 and wants_resume(self.scope):
            self.replay = Replay(binding_settings.RESUME_BUFFER_BYTES)
        self._tasks: set[asyncio.Task] = set()
        running = binding_settings.MAX_CONCURRENT_REQUESTS
        self._slots = asyncio.Semaphore(running)
        self._max_tasks = running * (1 + BACKLOG_FACTOR)
        # Frames held by requests in progress, in bytes: each waiting request
        # keeps its parsed frame, up to MAX_FRAME_BYTES.
        self._pending_bytes = 0
        self._max_pending_bytes = binding_settings.MAX_PENDING_REQUEST_BYTES
        self.outbox = Outbox(
            self._write, self._too_slow, binding_settings.OUTGOING_BUFFER_BYTES
        )
        self.hub = Hub.current()
        allowed, auth_error = await self.open_connection()
        await self.accept(self.accepted_subprotocol())
        if not allowed:
            if auth_error is not None:
                # Written directly: the outbox would let the close overtake it.
                error = protocol.error("authorize", auth_error)
                await self._write(protocol.encode(error))
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        refused = await self.join_groups()
        for message in self.greeting(auth_error, refused):
            await self.send_message(message)
        self.is_open = True

    async def disconnect(self, code: int) -> None:
        for task in list(getattr(self, "_tasks", ())):
            task.cancel()
        if hasattr(self, "outbox"):
            self.outbox.close()
        if not hasattr(self, "hub"):
            return
        if self.replay is not None and self.forward is None and self.is_open:
            # Kept for a resume: pushes are numbered and kept meanwhile.
            self.hub.park(self, self.replay.token, binding_settings.RESUME_SECONDS)
        else:
            await self.hub.release(self)

    async def send_message(self, message: dict) -> None:
        self.outbox.put(protocol.encode(message))

    async def push_text(self, text: str) -> None:
        """Send a frame computed elsewhere (a push, a notification)."""
        self.queue_text(text)

    def queue_text(self, text: str) -> None:
        """:meth:`push_text` without awaiting, from the event loop's thread."""
        if self.forward is not None:
            self.forward.queue_text(text)
            return
        if self.revoked:
            return
        if self.replay is not None:
            text = self.replay.number(text)
        self.outbox.put(text)

    async def _write(self, text: str) -> None:
        await self._send_frame({"type": "websocket.send", "text": text})

    def queue_reply(self, message: dict) -> None:
        self.outbox.put(protocol.encode(message))

    async def close_revoked(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.replay = None
        # Closed first: releasing may stop the hub, which waits for the layer.
        if not self.outbox.closed:
            self.outbox.close()
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
        await self.hub.release(self)

    def _too_slow(self) -> None:
        logger.warning("Closing %s: it stopped reading its socket", self.client_id)
        asyncio.get_running_loop().create_task(self._close_slow())

    async def _close_slow(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.replay = None  # what it missed is too much to replay
        await self.hub.release(self)
        await self.close(code=CLOSE_TOO_SLOW)

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        frame, message = self.read_frame(text_data, bytes_data)
        size = len(text_data if text_data is not None else bytes_data or b"")
        if message is not None:
            await self.send_message(message)
        elif self.is_connection_event(frame):
            # Answered in order: frames after an ``authorize`` use the new identity.
            for reply in await self.answer_connection_event(frame):
                await self.send_message(reply)
        elif len(self._tasks) >= self._max_tasks or self._too_heavy(size):
            # Never wait here: a receive that waits stops Channels reading this
            # socket, disconnect included. A client this far ahead is told so.
            busy = Throttled(detail="Too many requests in progress: wait for replies.")
            await self.send_message(protocol.error(frame.event, busy, frame))
        else:
            try:
                # Made now, not when a slot frees: the request belongs to the
                # identity the connection has when the frame is read.
                binding = self.binding_for(frame)
            except Exception as exc:
                self.outbox.put(encode_reply(frame, exc=exc))
                return
            task = asyncio.create_task(self.answer(frame, binding))
            self._tasks.add(task)
            self._pending_bytes += size
            task.add_done_callback(lambda done: self._done(done, size))

    def _too_heavy(self, size: int) -> bool:
        """Whether a frame of ``size`` would pass MAX_PENDING_REQUEST_BYTES; a
        frame alone always passes (MAX_FRAME_BYTES bounds it)."""
        limit = self._max_pending_bytes
        return (
            bool(self._tasks)
            and limit is not None
            and (self._pending_bytes + size > limit)
        )

    def _done(self, task: asyncio.Task, size: int) -> None:
        self._tasks.discard(task)
        self._pending_bytes -= size

    async def answer(self, frame: Frame, binding: Any) -> None:
        async with self._slots:
            await self._answer(frame, binding)

    async def _answer(self, frame: Frame, binding: Any) -> None:
        try:
            try:
                if binding.needs_stream():
                    await self.hub.watch_stream(binding.stream, self)
                data = await binding.arun()
            except Exception as exc:
                text = encode_reply(frame, exc=exc)
            else:
                text = encode_reply(frame, data)
            await self.outbox.write(text)
        finally:
            # Pushes held back while the reply was not out can go now.
            self.hub.unhold(binding.request)


async def _current_hub() -> Hub:
    return Hub.current()


async def _unhold(hub: Hub, request: Any) -> None:
    hub.unhold(request)


class SyncConsumer(ConnectionMixin, WebsocketConsumer):
    """The same protocol, one request at a time, in Channels' worker thread."""

    channel_layer_alias = None

    async def __call__(self, scope, receive, send) -> None:
        # Keep the ASGI send: the hub pushes from the event loop, where the
        # synchronous ``send`` of this consumer cannot be called.
        self._asgi_send = send
        self._send_frame = frame_sender(send)
        await super().__call__(scope, receive, send)

    async def push_text(self, text: str) -> None:
        self.queue_text(text)

    def queue_reply(self, message: dict) -> None:
        self.queue_text(protocol.encode(message), reply=True)

    async def close_revoked(self) -> None:
        close = {"type": "websocket.close", "code": CLOSE_NOT_AUTHENTICATED}
        await self._asgi_send(close)
        await self.hub.release(self)

    def queue_text(self, text: str, reply: bool = False) -> None:
        if self.revoked and not reply:
            return
        # Pushes go through a bounded outbox like the async consumer's; replies
        # are written by this consumer's thread, which may wait for the socket.
        if not hasattr(self, "outbox"):
            self.outbox = Outbox(
                self._write, self._too_slow, binding_settings.OUTGOING_BUFFER_BYTES
            )
        self.outbox.put(text)

    async def _write(self, text: str) -> None:
        await self._send_frame({"type": "websocket.send", "text": text})

    def _too_slow(self) -> None:
        logger.warning("Closing %s: it stopped reading its socket", self.client_id)
        asyncio.get_running_loop().create_task(self._close_slow())

    async def _close_slow(self) -> None:
        await self.hub.release(self)
        await self._asgi_send({"type": "websocket.close", "code": CLOSE_TOO_SLOW})

    def connect(self) -> None:
        self.hub = async_to_sync(_current_hub)()
        allowed, auth_error = async_to_sync(self.open_connection)()
        self.accept(self.accepted_subprotocol())
        if not allowed:
            if auth_error is not None:
                self.send_message(protocol.error("authorize", auth_error))
            self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        refused = async_to_sync(self.join_groups)()
        for message in self.greeting(auth_error, refused):
            self.send_message(message)

    def disconnect(self, code: int) -> None:
        if hasattr(self, "outbox"):
            self.outbox.closed = True
        if hasattr(self, "hub"):
            async_to_sync(self.hub.release)(self)

    def send_message(self, message: dict) -> None:
        self.send(text_data=protocol.encode(message))

    def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        frame, message = self.read_frame(text_data, bytes_data)
        if message is not None:
            self.send_message(message)
            return
        if self.is_connection_event(frame):
            for reply in async_to_sync(self.answer_connection_event)(frame):
                self.send_message(reply)
            return
        binding = None
        try:
            binding = self.binding_for(frame)
            if binding.needs_stream():
                async_to_sync(self.hub.watch_stream)(binding.stream, self)
            data = binding.run()
        except Exception as exc:
            text = encode_reply(frame, exc=exc)
        else:
            text = encode_reply(frame, data)
        try:
            self.send(text_data=text)
        finally:
            if binding is not None and binding.request.holds:
                async_to_sync(_unhold)(self.hub, binding.request)

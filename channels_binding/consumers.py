"""Websocket transports: one JSON frame in, one reply frame out.

``AsyncConsumer`` answers several requests of one connection concurrently (up to
``MAX_CONCURRENT_REQUESTS``; replies carry the request's ``request_id``), each in a
single worker-thread hop for its database work. ``SyncConsumer`` answers them one at
a time in Channels' worker thread. Both serve the same bindings with the same frames.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from . import protocol
from .authentication import authenticate_scope
from .bindings import GenericBinding
from .exceptions import ServerError
from .hub import Hub
from .protocol import BadFrame, Event, Frame
from .request import BindingRequest
from .settings import binding_settings

logger = logging.getLogger("channels_binding")

#: Close code sent after accepting an anonymous handshake when
#: ``ANONYMOUS_CONNECTION_ALLOWED`` is False (4000 + HTTP 401).
CLOSE_NOT_AUTHENTICATED = 4401


class BindingConsumerMixin:
    """What both consumers share: connection state, parsing and connection events.

    Connection-level events (``ping``, ``connection``) are methods named
    ``event_<name>`` returning the reply's data; everything else goes to bindings.
    """

    connection_events = {"ping": "event_ping", "connection": "event_connection"}

    client_id: str
    user: Any
    auth: Any

    def open_connection(self, user: Any, auth: Any) -> bool:
        """Record who connected; False when the connection must be refused."""
        self.client_id = uuid.uuid4().hex
        self.user, self.auth = user, auth
        self.channels: list[str] = []
        return user.is_authenticated or binding_settings.ANONYMOUS_CONNECTION_ALLOWED

    def connection_data(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "user_id": self.user.pk if self.user.is_authenticated else None,
            "authenticated": bool(self.user.is_authenticated),
            "channels": list(self.channels),
        }

    def event_ping(self, frame: Frame) -> dict:
        return {}

    def event_connection(self, frame: Frame) -> dict:
        return self.connection_data()

    def read_frame(self, text: str | None, data: bytes | None):
        """``(frame, None)`` for a frame to dispatch, or ``(None, message)`` with the
        error or connection-event reply to send straight back."""
        try:
            frame = protocol.parse_frame(
                text, data, max_bytes=binding_settings.MAX_FRAME_BYTES
            )
        except BadFrame as bad:
            return None, protocol.error(bad.event, bad.exc, bad.frame)
        local = self.connection_events.get(frame.event)
        if local is not None:
            reply_event = "pong" if frame.event == "ping" else frame.event
            data = getattr(self, local)(frame)
            return None, protocol.reply(reply_event, data, frame)
        return frame, None

    def binding_for(self, frame: Frame) -> GenericBinding:
        event = Event.parse(frame.event)
        request = BindingRequest(
            event=frame.event,
            stream=event.stream,
            action=event.action,
            hash=event.hash,
            data=frame.data,
            request_id=frame.request_id,
            user=self.user,
            auth=self.auth,
            transport="websocket",
            connection=self,
        )
        return GenericBinding.for_request(request)

    def encode_reply(self, frame: Frame, data: Any = None, exc: Any = None) -> str:
        if exc is None:
            try:
                return protocol.encode(protocol.reply(frame.event, data, frame))
            except (TypeError, ValueError):
                logger.error("Reply to %r is not JSON", frame.event, exc_info=True)
                exc = ServerError()
        return protocol.encode(protocol.error(frame.event, exc, frame))


class AsyncConsumer(BindingConsumerMixin, AsyncWebsocketConsumer):
    """The websocket consumer to mount: ``path("ws/", AsyncConsumer.as_asgi())``."""

    async def dispatch(self, message: dict) -> None:
        # Channels awaits ``aclose_old_connections()`` (a thread hop) before every
        # message. Our database work already runs through ``database_sync_to_async``,
        # which closes stale connections in the worker thread, so the extra hop is
        # pure cost: it halves throughput (see PERF-NOTES).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self._tasks: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(binding_settings.MAX_CONCURRENT_REQUESTS)
        self.hub = Hub.current()
        user, auth = await authenticate_scope(self.scope)
        allowed = self.open_connection(user, auth)
        await self.accept()
        if not allowed:
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        await self.send_message(protocol.reply("connection", self.connection_data()))

    async def disconnect(self, code: int) -> None:
        for task in list(getattr(self, "_tasks", ())):
            task.cancel()
        if hasattr(self, "hub"):
            await self.hub.release(self)

    async def send_message(self, message: dict) -> None:
        await self.send(text_data=protocol.encode(message))

    async def push_text(self, text: str) -> None:
        """Send a push frame computed by the hub."""
        await self.send(text_data=text)

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        frame, message = self.read_frame(text_data, bytes_data)
        if message is not None:
            await self.send_message(message)
            return
        # Waiting for a slot stops reading this socket: a client that floods gets
        # back-pressure, not an unbounded pile of tasks.
        await self._slots.acquire()
        task = asyncio.create_task(self.answer(frame))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def answer(self, frame: Frame) -> None:
        try:
            binding = self.binding_for(frame)
            if binding.needs_stream():
                await self.hub.watch_stream(binding.stream, self)
            data = await binding.arun()
        except Exception as exc:
            text = self.encode_reply(frame, exc=exc)
        else:
            text = self.encode_reply(frame, data)
        await self.send(text_data=text)


async def _current_hub() -> Hub:
    return Hub.current()


class SyncConsumer(BindingConsumerMixin, WebsocketConsumer):
    """The same protocol, one request at a time, in Channels' worker thread."""

    async def __call__(self, scope, receive, send) -> None:
        # Keep the ASGI send: the hub pushes from the event loop, where the
        # synchronous ``send`` of this consumer cannot be called.
        self._asgi_send = send
        await super().__call__(scope, receive, send)

    async def push_text(self, text: str) -> None:
        await self._asgi_send({"type": "websocket.send", "text": text})

    def connect(self) -> None:
        self.hub = async_to_sync(_current_hub)()
        user, auth = async_to_sync(authenticate_scope)(self.scope)
        allowed = self.open_connection(user, auth)
        self.accept()
        if not allowed:
            self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        self.send_message(protocol.reply("connection", self.connection_data()))

    def disconnect(self, code: int) -> None:
        if hasattr(self, "hub"):
            async_to_sync(self.hub.release)(self)

    def send_message(self, message: dict) -> None:
        self.send(text_data=protocol.encode(message))

    def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        frame, message = self.read_frame(text_data, bytes_data)
        if message is not None:
            self.send_message(message)
            return
        try:
            binding = self.binding_for(frame)
            if binding.needs_stream():
                async_to_sync(self.hub.watch_stream)(binding.stream, self)
            data = binding.run()
        except Exception as exc:
            text = self.encode_reply(frame, exc=exc)
        else:
            text = self.encode_reply(frame, data)
        self.send(text_data=text)

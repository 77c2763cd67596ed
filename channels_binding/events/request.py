"""The request object a binding sees, whichever transport the event came by."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import async_to_sync

from .protocol import Event, notification

# How each built-in action reads to DRF permission classes.
ACTION_METHODS = {
    "retrieve": "GET",
    "list": "GET",
    "search": "GET",
    "subscribe": "GET",
    "unsubscribe": "GET",
    "create": "POST",
    "update": "PATCH",
    "save": "PUT",  # POST when the save creates; see SaveMixin
    "delete": "DELETE",
}


class BindingRequest:
    """One event to answer: who sent it, what it asks, and how to answer.

    It quacks enough like DRF's ``Request`` (``user``, ``auth``, ``method``,
    ``data``, ``query_params``) that permission classes and serializers written for
    DRF views work unchanged. ``transport`` is ``"websocket"`` or ``"http"``;
    ``connection`` is the websocket consumer (``None`` over HTTP).
    """

    def __init__(
        self,
        *,
        event: str,
        stream: str,
        action: str,
        hash: str | None = None,
        data: dict[str, Any] | None = None,
        request_id: Any = None,
        user: Any = None,
        auth: Any = None,
        method: str | None = None,
        transport: str = "websocket",
        connection: Any = None,
        http_request: Any = None,
    ) -> None:
        #: The full event name, hash included: ``"shop.Product.retrieve#42"``.
        self.event = event
        #: The stream: ``"shop.Product"``.
        self.stream = stream
        #: The built-in action or the custom event's name: ``"retrieve"``.
        self.action = action
        #: The text after ``#`` in the event, or ``None``.
        self.hash = hash
        #: The frame's ``data``, ``{}`` when it had none.
        self.data = data if data is not None else {}
        #: The frame's ``request_id``, or ``None``.
        self.request_id = request_id
        #: The connection's user; ``AnonymousUser`` when nobody is logged in.
        self.user = user
        #: What the authentication class returned beside the user (a token).
        self.auth = auth
        #: The HTTP method permission classes see (``GET`` for reads).
        self.method = method or ACTION_METHODS.get(action, "POST")
        #: ``"websocket"`` or ``"http"``.
        self.transport = transport
        #: The websocket consumer that received the frame; ``None`` over HTTP.
        self.connection = connection
        self._request = http_request
        #: Subscriptions whose pushes wait until this request's reply is written.
        self.holds: list[Any] = []

    @classmethod
    def from_frame(cls, frame: Any, **kwargs: Any) -> BindingRequest:
        """The request for a parsed client frame (``protocol.Frame``); ``kwargs``
        say who sent it and how (``user``, ``auth``, ``transport``, ...)."""
        event = Event.parse(frame.event)
        return cls(
            event=frame.event,
            stream=event.stream,
            action=event.action,
            hash=event.hash,
            data=frame.data,
            request_id=frame.request_id,
            **kwargs,
        )

    @property
    def query_params(self) -> dict[str, Any]:
        """``data``, under the name DRF code reads."""
        return self.data

    @property
    def scope(self) -> dict[str, Any] | None:
        """The connection's ASGI scope; ``None`` over HTTP."""
        return getattr(self.connection, "scope", None)

    def notify_self(self, data: Any) -> bool:
        """Push ``data`` to the connection this request came from, as
        ``notify.clients`` would, from any handler (``def`` or ``async def``).
        Over HTTP there is no connection: nothing is sent and it returns False."""
        if self.connection is None:
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread
            async_to_sync(self.connection.push_text)(notification(data))
        else:  # an ``async def`` handler, on the event loop
            self.connection.queue_text(notification(data))
        return True

    async def anotify_self(self, data: Any) -> bool:
        """:meth:`notify_self` for ``async def`` handlers."""
        if self.connection is None:
            return False
        await self.connection.push_text(notification(data))
        return True

    def __repr__(self) -> str:
        return f"<BindingRequest {self.event!r} user={self.user!r}>"

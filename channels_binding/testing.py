"""Test helpers for projects that use channels-binding (and for its own tests).

``BindingCommunicator`` is Channels' ``WebsocketCommunicator`` that speaks the
binding protocol: it reads the ``connection`` frame on connect and sends and reads
JSON frames::

    async with BindingCommunicator(application, "/ws/") as client:
        reply = await client.request("shop.Product.retrieve", {"id": 1})
        assert reply["data"]["name"] == "Pen"
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from channels.testing import WebsocketCommunicator


class BindingCommunicator(WebsocketCommunicator):
    """Channels' ``WebsocketCommunicator`` for ``application`` at ``path``, taught
    the protocol. ``kwargs`` (``headers``, ``subprotocols``) go to
    ``WebsocketCommunicator``. As an async context manager it connects, checks
    that the handshake was accepted, and disconnects at the end.

    ``connection`` holds the data of the ``connection`` frame; ``pushes`` the
    frames :meth:`request` received before its reply.
    """

    def __init__(self, application: Any, path: str = "/ws/", **kwargs: Any) -> None:
        super().__init__(application, path, **kwargs)
        self.connection: dict[str, Any] | None = None
        self.pushes: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    async def connect(self, timeout: float = 3) -> tuple[bool, Any]:
        """Connect and read the ``connection`` frame into ``self.connection``."""
        connected, subprotocol = await super().connect(timeout)
        if connected:
            first = await self.receive_json_from(timeout)
            if first.get("event") == "connection":
                self.connection = first["data"]
            else:
                raise AssertionError(f"expected a connection frame, got {first!r}")
        return connected, subprotocol

    async def __aenter__(self) -> BindingCommunicator:
        connected, _ = await self.connect()
        assert connected, "the websocket handshake was refused"
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.disconnect()

    async def send_event(self, event: str, data: Any = None, **extra: Any) -> None:
        """Send ``{"event": event, "data": data, **extra}`` without waiting for a
        reply (``data`` is left out when ``None``)."""
        frame = {"event": event, **extra}
        if data is not None:
            frame["data"] = data
        await self.send_json_to(frame)

    async def request(
        self, event: str, data: Any = None, *, timeout: float = 3
    ) -> dict[str, Any]:
        """Send a frame with a fresh ``request_id`` and return its reply.

        Frames that arrive first and are not the reply (pushes) are kept in
        ``self.pushes``.
        """
        request_id = next(self._ids)
        await self.send_event(event, data, request_id=request_id)
        while True:
            frame = await self.receive_json_from(timeout)
            if frame.get("request_id") == request_id:
                return frame
            self.pushes.append(frame)

    async def receive_text_frame(self, timeout: float = 3) -> dict[str, Any]:
        """The next frame, decoded from JSON."""
        return json.loads(await self.receive_from(timeout))

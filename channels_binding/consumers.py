"""Public path (fixed) of the websocket consumers; a re-export of
:mod:`channels_binding.websocket.consumers`."""

from .websocket.consumers import (
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_TOO_SLOW,
    AsyncConsumer,
    SyncConsumer,
)

__all__ = ["AsyncConsumer", "SyncConsumer", "CLOSE_NOT_AUTHENTICATED", "CLOSE_TOO_SLOW"]

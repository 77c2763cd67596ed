"""What crosses the channel layer: group names and the notification messages.

Group names are ASCII, under 100 characters, never ambiguous: names that are not
safe as they are (unicode, long, odd characters) are hashed. The change message is
:data:`.capture.CHANGE_MESSAGE`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from typing import Any

_SAFE = re.compile(r"^[a-zA-Z0-9\-_.]{1,80}$")

#: Layer message a hub fans out to its local members of ``group``.
GROUP_MESSAGE = "binding.notify"
#: Layer message for one connection, sent to its process's hub.
DIRECT_MESSAGE = "binding.direct"
#: Layer message to a user's group: end what that identity may do (revocation).
REVOKE_MESSAGE = "binding.revoke"

#: Every connection of every process.
ALL = "cb.all"

#: Hubs receive on channels named ``cbhub.…``, so that every process sending to
#: them can give them their own capacity (``HUB_CAPACITY``).
HUB_CHANNEL_PREFIX = "cbhub"
_HUB_PATTERN = re.compile(fnmatch.translate(HUB_CHANNEL_PREFIX + "*"))


def give_hubs_capacity(layer: Any, capacity: int) -> None:
    """Let ``layer`` queue up to ``capacity`` messages for a hub, rather than its
    default (100 in Channels' layers), unless the project's ``channel_capacity``
    already names hub channels. The sender applies the capacity, so every process
    that sends changes calls this."""
    patterns = getattr(layer, "channel_capacity", None)
    if not isinstance(patterns, list) or getattr(layer, "_cb_hub_capacity", 0):
        return
    probe = HUB_CHANNEL_PREFIX + ".probe!probe"
    if not any(pattern.match(probe) for pattern, _ in patterns):
        patterns.insert(0, (_HUB_PATTERN, capacity))
    layer._cb_hub_capacity = capacity


def _name(kind: str, key: Any) -> str:
    key = str(key)
    if _SAFE.match(key):
        return f"cb.{kind}.{key}"
    return f"cb.{kind}.h." + hashlib.sha256(key.encode()).hexdigest()[:40]


def stream_group(stream: str) -> str:
    """Where the changes of a stream are announced."""
    return _name("s", stream)


def user_group(pk: Any) -> str:
    """Every connection of one user."""
    return _name("u", pk)


def channel_group(name: str) -> str:
    """Every connection that joined a named channel (``?channel=``)."""
    return _name("c", name)

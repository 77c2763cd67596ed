"""Channel-layer group names: ASCII, under 100 characters, never ambiguous.

Names that are not safe as they are (unicode, long, odd characters) are hashed.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

_SAFE = re.compile(r"^[a-zA-Z0-9\-_.]{1,80}$")

#: Every connection of every process.
ALL = "cb.all"


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

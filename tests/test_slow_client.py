"""A client that stops reading its socket: the server's memory stays bounded (its
outbox gives the connection up with close code 4008 once OUTGOING_BUFFER_BYTES are
waiting) and the other clients keep receiving everything.

uvicorn waits for a socket to drain before a write completes, so the bound is
reached there; daphne buffers without a limit in Twisted (see docs/security.rst).
The slow client is a raw socket that completes the handshake and then reads nothing
(a websocket library would keep reading into its own memory).
"""

import asyncio
import base64
import json
import os
import socket
import struct

import pytest
from websockets.asyncio.client import connect

from tests.servers import django_admin, redis_server, server_env, uvicorn

pytestmark = pytest.mark.slow

BURST = 200
PAYLOAD = 100_000  # characters per notification: 20 MB in all
# The good client gets the notifications in bursts (its hub takes every message
# waiting in Redis at once): the limit must hold a burst, as the default does.
LIMIT = 2 * 1024 * 1024


def silent_client(port: int) -> socket.socket:
    """Open a websocket on /ws/ with a tiny receive window, then read nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        "GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_frames(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Everything the server sent until it closed, as (opcode, payload) frames."""
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    frames, at = [], 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            (length,) = struct.unpack(">H", data[at : at + 2])
            at += 2
        elif length == 127:
            (length,) = struct.unpack(">Q", data[at : at + 8])
            at += 8
        frames.append((opcode, data[at : at + length]))
        at += length
    return frames


async def test_a_client_that_never_reads_is_closed_and_others_are_served(tmp_path):
    with redis_server(tmp_path) as url:
        env = server_env(
            tmp_path / "db.sqlite3", url, CB_OUTGOING_BUFFER_BYTES=str(LIMIT)
        )
        await asyncio.to_thread(django_admin, env, "migrate", "--noinput", "-v", "0")
        with uvicorn(env, tmp_path / "uvicorn.log") as port:
            slow = await asyncio.to_thread(silent_client, port)
            async with connect(f"ws://127.0.0.1:{port}/ws/", max_size=None) as good:
                assert json.loads(await good.recv())["event"] == "connection"
                script = (
                    "from channels_binding import notify\n"
                    f"for i in range({BURST}):\n"
                    f"    notify.all({{'i': i, 'pad': 'x' * {PAYLOAD}}})\n"
                )
                sender = asyncio.create_task(
                    asyncio.to_thread(django_admin, env, "shell", "-c", script)
                )
                # the good client gets every notification, in order, while the
                # slow one reads nothing
                for expected in range(BURST):
                    frame = json.loads(await asyncio.wait_for(good.recv(), 20))
                    assert frame["data"]["i"] == expected
                await sender
                await good.send(json.dumps({"event": "ping"}))
                assert json.loads(await good.recv()) == {"event": "pong", "data": {}}

            # the slow client, reading at last, finds a few frames and then the
            # close: far fewer than were sent, ending with code 4008
            frames = await asyncio.to_thread(read_frames, slow)
            slow.close()
            texts = [payload for opcode, payload in frames if opcode == 1]
            closes = [payload for opcode, payload in frames if opcode == 8]
            assert len(texts) < BURST // 4
            assert [struct.unpack(">H", c[:2])[0] for c in closes] == [4008]

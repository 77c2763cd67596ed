"""The per-connection outbox on its own: frame order, size accounting, and when a
connection is given up (the real-server side is in test_slow_client.py)."""

import asyncio
import random

import pytest

from channels_binding.websocket.outbox import Outbox


def waiting(box):
    return sum(len(frame) for frame in box._frames)


@pytest.mark.parametrize("seed", range(40))
async def test_frames_keep_their_order_and_the_size_its_count(seed):
    rnd = random.Random(seed)
    written, given_up = [], []

    async def write(text):
        await asyncio.sleep(rnd.random() * 0.0005)
        written.append(text)

    box = Outbox(write, lambda: given_up.append(True), limit=10**9)
    sent, replies = [], []
    for number in range(30):
        text = f"{number:03d}" * rnd.randint(1, 5)
        sent.append(text)
        if rnd.random() < 0.5:
            box.put(text)  # a push
        else:  # a reply, written by its own task
            replies.append(asyncio.ensure_future(box.write(text)))
            await asyncio.sleep(0)
        assert box.size == waiting(box) >= 0
        if rnd.random() < 0.3:
            await asyncio.sleep(rnd.random() * 0.001)
    await asyncio.gather(*replies)
    while box._writer is not None:
        await asyncio.sleep(0.001)
    assert written == sent
    assert box.size == 0 and not given_up


async def test_one_big_frame_waiting_behind_another_is_sent():
    written, given_up = [], []
    drained = asyncio.Event()

    async def write(text):
        await drained.wait()  # the client reads, a little later
        written.append(text)

    box = Outbox(write, lambda: given_up.append(True), limit=1000)
    box.put("push")  # being written
    await asyncio.sleep(0)
    big = "R" * 1500  # a page larger than the limit
    reply = asyncio.ensure_future(box.write(big))
    await asyncio.sleep(0)
    box.put('{"event":"pong"}')
    drained.set()
    await reply
    while box._writer is not None:
        await asyncio.sleep(0.001)
    assert not given_up
    assert written == ["push", big, '{"event":"pong"}']


async def test_a_big_frame_anywhere_in_the_queue_is_sent():
    written, given_up = [], []
    drained = asyncio.Event()

    async def write(text):
        await drained.wait()
        written.append(text)

    box = Outbox(write, lambda: given_up.append(True), limit=1000)
    frames = ["push1", "push2", "R" * 1500, '{"event":"pong"}', "push3"]
    box.put(frames[0])  # being written
    await asyncio.sleep(0)
    for frame in frames[1:]:
        box.put(frame)
    drained.set()
    while box._writer is not None:
        await asyncio.sleep(0.001)
    assert not given_up
    assert written == frames


async def test_a_client_that_stops_reading_is_given_up():
    given_up = []
    never = asyncio.Event()

    async def write(text):
        await never.wait()

    box = Outbox(write, lambda: given_up.append(True), limit=1000)
    for _ in range(40):
        box.put("x" * 100)
        await asyncio.sleep(0)
    assert given_up == [True]
    assert box.closed and waiting(box) == 0
    box.close()

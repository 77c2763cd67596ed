// Reconnecting: back-off, re-authorize, re-watch, re-subscribe, close().
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { connectedClient, fakeTimers, fixRandom, flush, makeClient, recorder } from "./helpers.mjs";

/** Drops the socket `times` times in a row (each retry fails) and returns the delays. */
function failingDelays(t, client, Socket, times) {
  const delays = [];
  client.on("close", ({ reconnectIn }) => delays.push(reconnectIn));
  for (let i = 0; i < times; i++) {
    const before = Socket.instances.length;
    Socket.last.drop();
    const delay = delays.at(-1);
    t.mock.timers.tick(delay - 1);
    assert.equal(Socket.instances.length, before, `no new socket before ${delay} ms`);
    t.mock.timers.tick(1);
    assert.equal(Socket.instances.length, before + 1, `a new socket after ${delay} ms`);
  }
  return delays;
}

describe("back-off", () => {
  beforeEach((t) => fakeTimers(t));

  test("grows by the factor and is capped at max (no jitter at random 0.5)", async (t) => {
    fixRandom(t, 0.5);
    const { client, Socket } = await connectedClient();
    const delays = failingDelays(t, client, Socket, 7);
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 10000, 10000]);
  });

  test("jitter is at most -20%", async (t) => {
    fixRandom(t, 0);
    const { client, Socket } = await connectedClient();
    const delays = failingDelays(t, client, Socket, 7);
    assert.deepEqual(delays, [400, 800, 1600, 3200, 6400, 8000, 8000]);
  });

  test("jitter is at most +20%, and never above max", async (t) => {
    fixRandom(t, 0.999999);
    const { client, Socket } = await connectedClient();
    const delays = failingDelays(t, client, Socket, 6);
    assert.deepEqual(delays, [600, 1200, 2400, 4800, 9600, 10000]);
  });

  test("the options set initial, factor and max", async (t) => {
    fixRandom(t, 0.5);
    const { client, Socket } = await connectedClient({ reconnect: { initial: 100, factor: 3, max: 1000 } });
    const delays = failingDelays(t, client, Socket, 4);
    assert.deepEqual(delays, [100, 300, 900, 1000]);
  });

  test("a successful connection starts the back-off again", async (t) => {
    fixRandom(t, 0.5);
    const { client, Socket } = await connectedClient();
    assert.deepEqual(failingDelays(t, client, Socket, 3), [500, 1000, 2000]);
    Socket.last.handshake();
    await flush();
    const delays = [];
    client.on("close", ({ reconnectIn }) => delays.push(reconnectIn));
    Socket.last.drop();
    assert.deepEqual(delays, [500]);
  });

  test("a first connection that fails is retried, and connect() resolves later", async (t) => {
    fixRandom(t, 0.5);
    const { client, Socket } = makeClient();
    let connected = null;
    client.connect().then((data) => (connected = data));
    Socket.last.drop();
    t.mock.timers.tick(500);
    assert.equal(Socket.instances.length, 2);
    Socket.last.handshake({ client_id: "late" });
    await flush();
    assert.deepEqual(connected, { client_id: "late" });
  });

  test("close and reconnect events", async (t) => {
    fixRandom(t, 0.5);
    const { client, Socket, socket } = await connectedClient();
    const closes = recorder();
    const reconnects = recorder();
    const opens = recorder();
    client.on("close", closes.handler);
    client.on("reconnect", reconnects.handler);
    client.on("open", opens.handler);
    socket.drop(1011, "server restart");
    assert.deepEqual(closes.list, [[{ code: 1011, reason: "server restart", reconnectIn: 500 }]]);
    t.mock.timers.tick(500);
    Socket.last.handshake({ client_id: "c2" });
    await flush();
    assert.deepEqual(opens.list, [[{ client_id: "c2" }]]);
    assert.deepEqual(reconnects.list, [[{ client_id: "c2" }]]);
    assert.equal(client.connected, true);
  });

  test("an error without a close event (Node 20) closes the socket and reconnects", async (t) => {
    fixRandom(t, 0.5);
    const { client, Socket } = makeClient();
    const closes = recorder();
    client.on("close", closes.handler);
    client.connect();
    const failed = Socket.last;
    failed.error();
    assert.deepEqual(failed.closedWith, { code: 1000, reason: "" });
    assert.deepEqual(closes.list, [[{ code: 1006, reason: "", reconnectIn: 500 }]]);
    await flush();
    assert.equal(closes.list.length, 1);
    t.mock.timers.tick(500);
    assert.equal(Socket.instances.length, 2);
  });

  test("an error then a close (browsers) count as one drop", async (t) => {
    fixRandom(t, 0.5);
    const { client, Socket, socket } = await connectedClient();
    const closes = recorder();
    client.on("close", closes.handler);
    const pending = client.request("shop.Product.list");
    socket.failConnection();
    await assert.rejects(pending, { code: "disconnected" });
    assert.deepEqual(closes.list, [[{ code: 1006, reason: "", reconnectIn: 500 }]]);
    assert.equal(socket.closedWith, null);
    t.mock.timers.tick(500);
    assert.equal(Socket.instances.length, 2);
    t.mock.timers.tick(60_000);
    assert.equal(Socket.instances.length, 2);
  });

  test("reconnect: false gives up: connect() and queued requests are rejected", async () => {
    const { client, Socket } = makeClient({ reconnect: false });
    const connecting = client.connect();
    const queued = client.request("shop.Product.list");
    Socket.last.drop(4401);
    await assert.rejects(connecting, { code: "disconnected" });
    await assert.rejects(queued, { code: "disconnected" });
    assert.equal(Socket.instances.length, 1);
    const again = client.connect();
    Socket.last.handshake({ client_id: "c2" });
    assert.deepEqual(await again, { client_id: "c2" });
    assert.deepEqual(Socket.last.sent, []);
  });
});

describe("resuming after a reconnect", () => {
  beforeEach((t) => {
    fakeTimers(t);
    fixRandom(t, 0.5);
  });

  async function reconnect(t, Socket, data = { client_id: "c2" }) {
    Socket.last.drop();
    t.mock.timers.tick(500);
    Socket.last.handshake(data);
    await flush();
    return Socket.last;
  }

  test("re-authorizes first, then sends the queue, re-watches and re-subscribes", async (t) => {
    const { client, Socket, socket } = await connectedClient({ token: "handshake-token" });
    const authorizing = client.authorize("tok-2");
    socket.reply({ client_id: "c1", user_id: 2, authenticated: true, channels: [] });
    await authorizing;
    const object = client.watchObject("shop.Product", 7);
    const list = client.watchList("shop.Product", { filters: { in_stock: true } }, { hash: "stock" });
    client.subscribe("shop.Order", { filters: {} }, { hash: "all" });
    socket.reply({ subscribed: true }, 3);
    socket.reply({ page: 1, limit: 25, count: 0, rows: [] }, 2);
    socket.reply({ id: 7, name: "Pen" }, 1);
    await flush();

    Socket.last.drop();
    const queued = client.delete("shop.Product", 8);
    t.mock.timers.tick(500);
    const again = Socket.last;
    assert.deepEqual(again.protocols, ["channels-binding", "token.handshake-token"]);
    again.handshake({ client_id: "c2", user_id: 1, authenticated: true, channels: [] });
    await flush();
    assert.deepEqual(again.sent, [{ event: "authorize", data: { token: "tok-2" }, request_id: 6 }]);
    const user2 = { client_id: "c2", user_id: 2, authenticated: true, channels: [] };
    again.reply(user2);
    await flush();
    assert.deepEqual(again.sent.slice(1), [
      { event: "shop.Product.delete", data: { id: 8 }, request_id: 5 },
      { event: "shop.Product.retrieve#w1", data: { id: 7 }, request_id: 7 },
      { event: "shop.Product.list#stock", data: { filters: { in_stock: true } }, request_id: 8 },
      { event: "shop.Order.subscribe#all", data: { filters: {} }, request_id: 9 },
    ]);
    assert.deepEqual(client.connection, user2);
    again.reply({ id: 7, name: "Pen v2" }, 2);
    again.reply({ page: 1, limit: 25, count: 1, rows: [{ id: 3 }] }, 3);
    again.reply({ success: true, id: 8 }, 1);
    assert.deepEqual(await queued, { success: true, id: 8 });
    await flush();
    assert.deepEqual(object.value, { id: 7, name: "Pen v2" });
    assert.deepEqual(list.rows, [{ id: 3 }]);
  });

  test("requests made while re-authorizing wait for it", async (t) => {
    const { client, Socket, socket } = await connectedClient();
    const authorizing = client.authorize(null);
    socket.reply({ user_id: null });
    await authorizing;
    const again = await reconnect(t, Socket);
    client.retrieve("shop.Product", 1);
    assert.deepEqual(again.events(), ["authorize"]);
    assert.deepEqual(again.sent[0].data, {});
    again.reply({ user_id: null });
    await flush();
    assert.deepEqual(again.events(), ["authorize", "shop.Product.retrieve"]);
  });

  test("a failed re-authorize is reported, and the rest is still sent", async (t) => {
    const { client, Socket, socket } = await connectedClient();
    const errors = recorder();
    client.on("error", errors.handler);
    const authorizing = client.authorize("expiring");
    socket.reply({ user_id: 4 });
    await authorizing;
    client.watchObject("shop.Product", 7);
    const again = await reconnect(t, Socket);
    again.fail({ status: 401, code: "not_authenticated", detail: "Invalid token." });
    await flush();
    assert.deepEqual(
      errors.list.map(([error]) => error.code),
      ["not_authenticated"],
    );
    assert.deepEqual(again.events(), ["authorize", "shop.Product.retrieve#w1"]);
  });

  test("without authorize(), nothing is re-authorized", async (t) => {
    const { client, Socket } = await connectedClient({ token: "abc" });
    client.watchList("shop.Product");
    const again = await reconnect(t, Socket);
    assert.deepEqual(again.events(), ["shop.Product.list#w1"]);
  });

  test("a failed authorize is not remembered", async (t) => {
    const { client, Socket, socket } = await connectedClient();
    const authorizing = client.authorize("bad");
    socket.fail({ status: 401, code: "not_authenticated", detail: "Invalid token." });
    await assert.rejects(authorizing, { code: "not_authenticated" });
    const again = await reconnect(t, Socket);
    assert.deepEqual(again.sent, []);
  });

  test("stopped watches and unsubscribed or refused subscriptions are not made again", async (t) => {
    const { client, Socket, socket } = await connectedClient();
    client.watchObject("shop.Product", 7).stop();
    client.subscribe("shop.Product", 3).catch(() => {});
    client.unsubscribe("shop.Product", 3).catch(() => {});
    const refused = client.subscribe("shop.Secret", 1);
    socket.fail({ status: 403, code: "permission_denied", detail: "No." });
    await assert.rejects(refused, { code: "permission_denied" });
    client.subscribe("shop.Product", 4, { hash: "kept" }).catch(() => {});
    const again = await reconnect(t, Socket);
    assert.deepEqual(
      again.sent.map(({ event, data }) => [event, data]),
      [["shop.Product.subscribe#kept", { id: 4 }]],
    );
  });

  test("a subscribe queued during the outage is sent once, and made again later", async (t) => {
    const { client, Socket } = await connectedClient();
    Socket.last.drop();
    client.subscribe("shop.Product", 5).catch(() => {});
    t.mock.timers.tick(500);
    Socket.last.handshake();
    await flush();
    assert.deepEqual(Socket.last.events(), ["shop.Product.subscribe"]);
    Socket.last.reply({ subscribed: true });
    const again = await reconnect(t, Socket);
    assert.deepEqual(again.sent, [{ event: "shop.Product.subscribe", data: { id: 5 }, request_id: 2 }]);
  });

  test("a drop during the re-authorize stops the resume; the next one completes it", async (t) => {
    const { client, Socket, socket } = await connectedClient();
    const errors = recorder();
    const reconnects = recorder();
    client.on("error", errors.handler);
    client.on("reconnect", reconnects.handler);
    const authorizing = client.authorize("tok");
    socket.reply({ user_id: 5 });
    await authorizing;
    client.watchObject("shop.Product", 7);
    const cut = await reconnect(t, Socket);
    assert.deepEqual(cut.events(), ["authorize"]);
    cut.drop();
    await flush();
    assert.deepEqual(cut.events(), ["authorize"]);
    assert.deepEqual(errors.list, []);
    assert.deepEqual(reconnects.list, []);
    assert.equal(Socket.instances.length, 2);
    t.mock.timers.tick(500);
    const last = Socket.last;
    last.handshake({ client_id: "c3" });
    await flush();
    last.reply({ client_id: "c3", user_id: 5 });
    await flush();
    assert.deepEqual(last.events(), ["authorize", "shop.Product.retrieve#w1"]);
    assert.deepEqual(reconnects.list, [[{ client_id: "c3", user_id: 5 }]]);
  });

  test("a drop right after the re-authorize reply sends nothing more", async (t) => {
    const { client, Socket, socket } = await connectedClient();
    const authorizing = client.authorize("tok");
    socket.reply({ user_id: 5 });
    await authorizing;
    client.watchObject("shop.Product", 7);
    const errors = recorder();
    client.on("error", errors.handler);
    const cut = await reconnect(t, Socket);
    cut.reply({ user_id: 5 });
    cut.drop();
    await flush();
    assert.deepEqual(cut.events(), ["authorize"]);
    assert.equal(client.connected, false);
    assert.deepEqual(errors.list, []);
    const queued = client.retrieve("shop.Product", 1);
    t.mock.timers.tick(1000);
    Socket.last.handshake();
    Socket.last.reply({ user_id: 5 });
    await flush();
    assert.deepEqual(Socket.last.events(), ["authorize", "shop.Product.retrieve", "shop.Product.retrieve#w1"]);
    Socket.last.reply({ id: 1 }, 1);
    assert.deepEqual(await queued, { id: 1 });
  });

  test("connect() during a back-off wait opens no extra socket", async (t) => {
    const { client, Socket } = await connectedClient();
    Socket.last.drop();
    const connecting = client.connect();
    assert.equal(Socket.instances.length, 1);
    t.mock.timers.tick(500);
    assert.equal(Socket.instances.length, 2);
    Socket.last.handshake({ client_id: "c2" });
    assert.deepEqual(await connecting, { client_id: "c2" });
  });

  test("a watch's pending load that was cut off is made again, without an error", async (t) => {
    const { client, Socket } = await connectedClient();
    const errors = recorder();
    client.on("error", errors.handler);
    client.watchObject("shop.Product", 7);
    const again = await reconnect(t, Socket);
    assert.deepEqual(again.events(), ["shop.Product.retrieve#w1"]);
    assert.deepEqual(errors.list, []);
  });
});

describe("close()", () => {
  beforeEach((t) => {
    fakeTimers(t);
    fixRandom(t, 0.5);
  });

  test("closes the socket and stops reconnecting for good", async (t) => {
    const { client, Socket, socket } = await connectedClient();
    const closes = recorder();
    client.on("close", closes.handler);
    const pending = client.request("shop.Product.list");
    client.close();
    assert.deepEqual(socket.closedWith, { code: 1000, reason: "" });
    await assert.rejects(pending, { code: "closed", status: 0 });
    await assert.rejects(client.request("ping"), { code: "closed", event: "ping" });
    await flush();
    t.mock.timers.tick(60_000);
    assert.equal(Socket.instances.length, 1);
    assert.equal(client.connected, false);
    assert.deepEqual(closes.list, [[{ code: 1000, reason: "", reconnectIn: null }]]);
  });

  test("during a back-off wait, cancels the reconnect", async (t) => {
    const { client, Socket } = await connectedClient();
    Socket.last.drop();
    client.close();
    t.mock.timers.tick(60_000);
    assert.equal(Socket.instances.length, 1);
  });

  test("rejects connect() and queued requests", async () => {
    const { client } = makeClient();
    const connecting = client.connect();
    const queued = client.retrieve("shop.Product", 1);
    client.close();
    await assert.rejects(connecting, { code: "closed" });
    await assert.rejects(queued, { code: "closed" });
  });

  test("connect() after close() opens again, without what close() rejected", async () => {
    const { client, Socket } = await connectedClient();
    Socket.last.drop();
    const queued = client.retrieve("shop.Product", 1);
    client.close();
    await assert.rejects(queued, { code: "closed" });
    const connecting = client.connect();
    assert.equal(Socket.instances.length, 2);
    Socket.last.handshake({ client_id: "back" });
    assert.deepEqual(await connecting, { client_id: "back" });
    assert.deepEqual(Socket.last.sent, []);
  });

  test("before connect(), emits no close event", async () => {
    const { client } = makeClient();
    const closes = recorder();
    client.on("close", closes.handler);
    client.close();
    assert.deepEqual(closes.list, []);
  });
});

// BindingClient: connecting, requests and replies, errors, queueing, listeners.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

import DefaultExport, { BindingClient, BindingError } from "../../channels_binding/static/channels_binding/client.js";
import { connectedClient, fakeTimers, flush, makeClient, recorder } from "./helpers.mjs";

describe("construction", () => {
  afterEach(() => {
    delete globalThis.location;
  });

  test("the default export is BindingClient", () => {
    assert.equal(DefaultExport, BindingClient);
  });

  test("a relative URL is resolved against the page, wss for https", () => {
    globalThis.location = { href: "https://shop.example/catalog/?page=2" };
    const { client } = makeClient();
    assert.equal(client.url, "ws://example.test/ws/");
    const relative = new BindingClient("/ws/", { WebSocket: class {} });
    assert.equal(relative.url, "wss://shop.example/ws/");
  });

  test("a relative URL on an http page gives ws", () => {
    globalThis.location = { href: "http://127.0.0.1:8000/" };
    assert.equal(new BindingClient("ws/?channel=news").url, "ws://127.0.0.1:8000/ws/?channel=news");
  });

  test("a relative URL without a page is a TypeError", () => {
    assert.throws(() => new BindingClient("/ws/"), TypeError);
  });

  test("without a token, no subprotocol is offered", async (t) => {
    fakeTimers(t);
    const { Socket } = await connectedClient();
    assert.equal(Socket.instances.length, 1);
    assert.equal(Socket.last.url, "ws://example.test/ws/?resume=1");
    assert.equal(Socket.last.protocols, undefined);
  });

  test("the socket's URL asks for resume, next to the other parameters, unless told not to", () => {
    const opened = (url, options) => {
      const { client, Socket } = makeClient(options, url);
      client.connect();
      return [client.url, Socket.last.url];
    };
    assert.deepEqual(opened("ws://example.test/ws/?channel=news&channel=room.42"), [
      "ws://example.test/ws/?channel=news&channel=room.42",
      "ws://example.test/ws/?channel=news&channel=room.42&resume=1",
    ]);
    assert.deepEqual(opened("ws://example.test/ws/?resume=0"), ["ws://example.test/ws/?resume=0", "ws://example.test/ws/?resume=0"]);
    assert.deepEqual(opened("ws://example.test/ws/", { resume: false }), ["ws://example.test/ws/", "ws://example.test/ws/"]);
  });

  test("a token is offered as subprotocols", async (t) => {
    fakeTimers(t);
    const { Socket } = await connectedClient({ token: "9944b091" });
    assert.deepEqual(Socket.last.protocols, ["channels-binding", "token.9944b091"]);
  });
});

describe("connect", () => {
  beforeEach((t) => fakeTimers(t));

  test("resolves with the connection frame's data once it arrives", async () => {
    const { client, Socket } = makeClient();
    let resolved = null;
    client.connect().then((data) => (resolved = data));
    Socket.last.open();
    await flush();
    assert.equal(resolved, null);
    assert.equal(client.connected, false);
    const data = { client_id: "abc", user_id: 7, authenticated: true, channels: ["news"] };
    Socket.last.deliver({ event: "connection", data });
    await flush();
    assert.deepEqual(resolved, data);
    assert.equal(client.connected, true);
    assert.deepEqual(client.connection, data);
  });

  test("a second connect() opens no second socket", async () => {
    const { client, Socket } = await connectedClient();
    const again = await client.connect();
    assert.equal(Socket.instances.length, 1);
    assert.deepEqual(again, client.connection);
  });

  test("a later connection frame updates client.connection", async () => {
    const { client, socket } = await connectedClient();
    socket.deliver({ event: "connection", data: { client_id: "c1", user_id: 3, authenticated: true, channels: [] } });
    assert.equal(client.connection.user_id, 3);
  });

  test("emits open with the connection data", async () => {
    const { client, Socket } = makeClient();
    const opened = recorder();
    client.on("open", opened.handler);
    client.connect();
    Socket.last.handshake({ client_id: "x", user_id: null, authenticated: false, channels: [] });
    assert.deepEqual(opened.list, [[{ client_id: "x", user_id: null, authenticated: false, channels: [] }]]);
  });
});

describe("requests", () => {
  beforeEach((t) => fakeTimers(t));

  test("frames carry auto-incrementing request_ids", async () => {
    const { client, socket } = await connectedClient();
    client.request("shop.Product.retrieve", { id: 1 });
    client.request("ping");
    assert.deepEqual(socket.sent, [
      { event: "shop.Product.retrieve", data: { id: 1 }, request_id: 1 },
      { event: "ping", data: {}, request_id: 2 },
    ]);
  });

  test("interleaved replies resolve the request with the same request_id", async () => {
    const { client, socket } = await connectedClient();
    const first = client.request("shop.Product.retrieve", { id: 1 });
    const second = client.request("shop.Product.retrieve", { id: 2 });
    const third = client.request("shop.Product.list", {});
    socket.reply({ id: 2, name: "Two" }, 1);
    socket.reply({ page: 1, rows: [] }, 2);
    socket.reply({ id: 1, name: "One" }, 0);
    assert.deepEqual(await first, { id: 1, name: "One" });
    assert.deepEqual(await second, { id: 2, name: "Two" });
    assert.deepEqual(await third, { page: 1, rows: [] });
  });

  test("an error frame rejects with a BindingError carrying its fields", async () => {
    const { client, socket } = await connectedClient();
    const creating = client.create("shop.Product", { price: -1 });
    const error = { status: 400, code: "invalid", detail: { price: ["Price cannot be negative."] } };
    socket.fail(error);
    const rejection = await creating.then(
      () => assert.fail("resolved"),
      (e) => e,
    );
    assert.ok(rejection instanceof BindingError);
    assert.ok(rejection instanceof Error);
    assert.equal(rejection.name, "BindingError");
    assert.equal(rejection.status, 400);
    assert.equal(rejection.code, "invalid");
    assert.deepEqual(rejection.detail, { price: ["Price cannot be negative."] });
    assert.equal(rejection.event, "shop.Product.create");
    assert.equal(rejection.message, 'invalid: {"price":["Price cannot be negative."]}');
  });

  test("a string detail is the error's message", async () => {
    const { client, socket } = await connectedClient();
    const retrieving = client.retrieve("shop.Product", 99, { hash: "side" });
    socket.fail({ status: 404, code: "not_found", detail: "Not found." });
    await assert.rejects(retrieving, {
      name: "BindingError",
      message: "Not found.",
      status: 404,
      code: "not_found",
      detail: "Not found.",
      event: "shop.Product.retrieve#side",
    });
  });

  test("a request with no reply is rejected after the timeout", async (t) => {
    const { client, socket } = await connectedClient({ timeout: 10000 });
    let outcome = null;
    const pending = client.request("shop.Product.stats").catch((error) => (outcome = error));
    t.mock.timers.tick(9999);
    await flush();
    assert.equal(outcome, null);
    t.mock.timers.tick(1);
    await pending;
    assert.equal(outcome.code, "timeout");
    assert.equal(outcome.status, 0);
    assert.equal(outcome.event, "shop.Product.stats");
    assert.equal(outcome.detail, "No reply within 10000 ms.");
    // a late reply is only dispatched to listeners
    const seen = [];
    client.on("shop.Product.stats", (data) => seen.push(data));
    socket.reply({ late: true }, 0);
    assert.deepEqual(seen, [{ late: true }]);
  });

  test("a per-request timeout overrides the client's", async (t) => {
    const { client } = await connectedClient({ timeout: 10000 });
    const pending = client.request("slow.thing", {}, { timeout: 50 });
    t.mock.timers.tick(50);
    await assert.rejects(pending, { code: "timeout", detail: "No reply within 50 ms." });
  });

  test("a timeout of 0 waits for ever", async (t) => {
    const { client, socket } = await connectedClient({ timeout: 0 });
    const pending = client.request("slow.thing");
    t.mock.timers.tick(3_600_000);
    socket.reply({ done: true });
    assert.deepEqual(await pending, { done: true });
  });

  test("a disconnect rejects pending requests with code 'disconnected'", async () => {
    const { client, socket } = await connectedClient();
    const one = client.request("shop.Product.retrieve", { id: 1 });
    const two = client.request("shop.Product.retrieve", { id: 2 });
    socket.drop();
    await assert.rejects(one, { name: "BindingError", code: "disconnected", status: 0, event: "shop.Product.retrieve" });
    await assert.rejects(two, { code: "disconnected" });
    assert.equal(client.connected, false);
  });

  test("requests made before connecting are queued, then sent in order", async () => {
    const { client, Socket } = makeClient();
    const reading = client.retrieve("shop.Product", 5);
    const listing = client.list("shop.Product", { page: 2 }, { hash: "side" });
    client.connect();
    const socket = Socket.last;
    socket.open();
    assert.deepEqual(socket.sent, []);
    socket.deliver({ event: "connection", data: {} });
    await flush();
    assert.deepEqual(socket.sent, [
      { event: "shop.Product.retrieve", data: { id: 5 }, request_id: 1 },
      { event: "shop.Product.list#side", data: { page: 2 }, request_id: 2 },
    ]);
    socket.reply({ id: 5 }, 0);
    socket.reply({ rows: [] }, 1);
    assert.deepEqual(await reading, { id: 5 });
    assert.deepEqual(await listing, { rows: [] });
  });

  test("requests made while disconnected are sent after the reconnect", async (t) => {
    const { client, Socket, socket } = await connectedClient();
    socket.drop();
    const saving = client.save("shop.Product", { id: 3, name: "Pen" });
    t.mock.timers.tick(10000);
    assert.equal(Socket.instances.length, 2);
    Socket.last.handshake();
    await flush();
    assert.deepEqual(Socket.last.sent, [{ event: "shop.Product.save", data: { id: 3, name: "Pen" }, request_id: 1 }]);
    Socket.last.reply({ success: true, id: 3 });
    assert.deepEqual(await saving, { success: true, id: 3 });
  });

  test("shortcuts send their events and data", async () => {
    const { client, socket } = await connectedClient();
    client.retrieve("shop.Product", 1);
    client.retrieve("shop.Product", null, { hash: "42" });
    client.list("shop.Product", { limit: 5, filters: { in_stock: true } }, { hash: "left" });
    client.search("shop.Product", "pen", { page: 2 });
    client.create("shop.Product", { name: "Pen" });
    client.update("shop.Product", 4, { price: "2.00" });
    client.save("shop.Product", { name: "Ink" }, { hash: "draft" });
    client.delete("shop.Product", 4);
    client.subscribe("shop.Product", 7);
    client.subscribe("shop.Product", { filters: { in_stock: true } }, { hash: "instock" });
    client.unsubscribe("shop.Product", { all: true });
    assert.deepEqual(
      socket.sent.map(({ event, data }) => [event, data]),
      [
        ["shop.Product.retrieve", { id: 1 }],
        ["shop.Product.retrieve#42", {}],
        ["shop.Product.list#left", { limit: 5, filters: { in_stock: true } }],
        ["shop.Product.search", { page: 2, query: "pen" }],
        ["shop.Product.create", { name: "Pen" }],
        ["shop.Product.update", { price: "2.00", id: 4 }],
        ["shop.Product.save#draft", { name: "Ink" }],
        ["shop.Product.delete", { id: 4 }],
        ["shop.Product.subscribe", { id: 7 }],
        ["shop.Product.subscribe#instock", { filters: { in_stock: true } }],
        ["shop.Product.unsubscribe", { all: true }],
      ],
    );
  });

  test("authorize sends the token, or {} for null, and resolves with the data", async () => {
    const { client, socket } = await connectedClient();
    const authorizing = client.authorize("tok-1");
    assert.deepEqual(socket.sent.at(-1), { event: "authorize", data: { token: "tok-1" }, request_id: 1 });
    const data = { client_id: "c1", user_id: 7, authenticated: true, channels: [] };
    socket.reply(data);
    assert.deepEqual(await authorizing, data);
    assert.deepEqual(client.connection, data);
    const anonymous = client.authorize(null);
    assert.deepEqual(socket.sent.at(-1), { event: "authorize", data: {}, request_id: 2 });
    socket.reply({ client_id: "c1", user_id: null, authenticated: false, channels: [] });
    assert.equal((await anonymous).user_id, null);
  });

  test("ping resolves with the round trip in ms", async (t) => {
    const { client, socket } = await connectedClient();
    const pinging = client.ping();
    assert.deepEqual(socket.sent.at(-1), { event: "ping", data: {}, request_id: 1 });
    t.mock.timers.tick(42);
    socket.deliver({ event: "pong", data: {}, request_id: 1 });
    assert.equal(await pinging, 42);
  });
});

describe("listeners", () => {
  beforeEach((t) => fakeTimers(t));

  test("exact with hash, without hash, and '*'", async () => {
    const { client, socket } = await connectedClient();
    const exact = recorder();
    const otherHash = recorder();
    const anyHash = recorder();
    const all = recorder();
    client.on("shop.Product.retrieve#sidebar", exact.handler);
    client.on("shop.Product.retrieve#main", otherHash.handler);
    client.on("shop.Product.retrieve", anyHash.handler);
    client.on("*", all.handler);
    const hashed = { event: "shop.Product.retrieve#sidebar", data: { id: 1 } };
    const plain = { event: "shop.Product.retrieve", data: { id: 2 } };
    const other = { event: "shop.Product.delete#sidebar", data: { id: 3 } };
    socket.deliver(hashed);
    socket.deliver(plain);
    socket.deliver(other);
    assert.deepEqual(exact.list, [[{ id: 1 }, hashed]]);
    assert.deepEqual(otherHash.list, []);
    assert.deepEqual(anyHash.list, [
      [{ id: 1 }, hashed],
      [{ id: 2 }, plain],
    ]);
    assert.deepEqual(
      all.list.map(([data]) => data),
      [{ id: 1 }, { id: 2 }, { id: 3 }],
    );
  });

  test("the returned function unsubscribes that handler only", async () => {
    const { client, socket } = await connectedClient();
    const first = recorder();
    const second = recorder();
    const off = client.on("notify", first.handler);
    client.on("notify", second.handler);
    socket.deliver({ event: "notify", data: { n: 1 } });
    off();
    socket.deliver({ event: "notify", data: { n: 2 } });
    assert.deepEqual(first.list.map(([data]) => data), [{ n: 1 }]);
    assert.deepEqual(second.list.map(([data]) => data), [{ n: 1 }, { n: 2 }]);
  });

  test("notifications and custom events reach their listeners", async () => {
    const { client, socket } = await connectedClient();
    const chat = recorder();
    client.on("chat.message", chat.handler);
    const frame = { event: "chat.message", data: { text: "hi" }, sender: { user_id: 7 } };
    socket.deliver(frame);
    assert.deepEqual(chat.list, [[{ text: "hi" }, frame]]);
  });

  test("replies are dispatched too, after the request is resolved", async () => {
    const { client, socket } = await connectedClient();
    const order = [];
    client.on("shop.Product.retrieve", (data, frame) => order.push(["listener", data, frame.request_id]));
    const reading = client.retrieve("shop.Product", 1).then((data) => order.push(["promise", data]));
    socket.reply({ id: 1 });
    await reading;
    assert.deepEqual(order, [
      ["listener", { id: 1 }, 1],
      ["promise", { id: 1 }],
    ]);
  });

  test("error frames nobody awaits go to 'error' listeners, not to event listeners", async () => {
    const { client, socket } = await connectedClient();
    const errors = recorder();
    const authorize = recorder();
    client.on("error", errors.handler);
    client.on("authorize", authorize.handler);
    const frame = { event: "authorize", error: { status: 401, code: "not_authenticated", detail: "Invalid token." } };
    socket.deliver(frame);
    assert.equal(errors.list.length, 1);
    const [error, received] = errors.list[0];
    assert.ok(error instanceof BindingError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "not_authenticated");
    assert.equal(error.event, "authorize");
    assert.deepEqual(received, frame);
    assert.deepEqual(authorize.list, []);
  });

  test("a throwing listener does not stop the others", async (t) => {
    const logged = t.mock.method(console, "error", () => {});
    const { client, socket } = await connectedClient();
    const after = recorder();
    client.on("notify", () => {
      throw new Error("broken listener");
    });
    client.on("notify", after.handler);
    socket.deliver({ event: "notify", data: { ok: 1 } });
    assert.equal(after.list.length, 1);
    assert.equal(logged.mock.callCount(), 1);
    assert.equal(logged.mock.calls[0].arguments[0].message, "broken listener");
  });

  test("frames that are not JSON objects are ignored", async () => {
    const { client, socket } = await connectedClient();
    const all = recorder();
    client.on("*", all.handler);
    socket.deliver("not json");
    socket.deliver("[1, 2]");
    socket.deliver("null");
    assert.deepEqual(all.list, []);
  });
});

// Resync frames and resuming a connection after a reconnect.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { connectedClient, fakeTimers, fixRandom, flush, makeClient, recorder } from "./helpers.mjs";

const pen = { id: 7, name: "Pen" };
const ink = { id: 8, name: "Ink" };
const pad = { id: 9, name: "Pad" };

function page(rows) {
  return { page: 1, limit: 25, count: rows.length, rows };
}

/** The events and data of the frames sent from `index` on. */
function sentFrom(socket, index = 0) {
  return socket.sent.slice(index).map(({ event, data }) => [event, data]);
}

describe("resync frames", () => {
  beforeEach((t) => fakeTimers(t));

  /** A connected client with two lists of one stream, one object and a list of another stream. */
  async function watching() {
    const setup = await connectedClient();
    const { client, socket } = setup;
    const stock = client.watchList("shop.Product", { filters: { in_stock: true }, page: 2 }, { hash: "stock" });
    const found = client.watchList("shop.Product", { query: "pe" }, { hash: "found", search: true });
    const object = client.watchObject("shop.Product", 7, { hash: "one" });
    const orders = client.watchList("shop.Order", {}, { hash: "stock" });
    socket.reply(page([pen, ink]), 0);
    socket.reply(page([pen]), 1);
    socket.reply(pen, 2);
    socket.reply(page([]), 3);
    await flush();
    return { ...setup, stock, found, object, orders, before: socket.sent.length };
  }

  test("reads again the list watch of that hash only, and replaces its rows", async () => {
    const { socket, stock, found, before } = await watching();
    socket.deliver({ event: "shop.Product.retrieve#stock", data: pad });
    assert.deepEqual(stock.rows, [pen, ink, pad]);
    socket.deliver({
      event: "shop.Product.resync#stock",
      data: { filters: { in_stock: true }, query: null },
      pos: 4,
    });
    assert.deepEqual(sentFrom(socket, before), [
      ["shop.Product.list#stock", { filters: { in_stock: true }, page: 2 }],
    ]);
    socket.reply({ page: 2, limit: 25, count: 27, rows: [ink] });
    await flush();
    assert.deepEqual(stock.rows, [ink]);
    assert.equal(stock.count, 27);
    assert.deepEqual(found.rows, [pen]);
  });

  test("a search watch searches again with its query", async () => {
    const { socket, found, before } = await watching();
    socket.deliver({ event: "shop.Product.resync#found", data: { filters: {}, query: "pe" }, pos: 1 });
    assert.deepEqual(sentFrom(socket, before), [["shop.Product.search#found", { query: "pe" }]]);
    socket.reply(page([pen, pad]));
    await flush();
    assert.deepEqual(found.rows, [pen, pad]);
  });

  test("an object watch of that hash retrieves again", async () => {
    const { socket, object, before } = await watching();
    socket.deliver({ event: "shop.Product.resync#one", data: { filters: {}, query: null } });
    assert.deepEqual(sentFrom(socket, before), [["shop.Product.retrieve#one", { id: 7 }]]);
    socket.reply({ ...pen, name: "Pen v2" });
    await flush();
    assert.deepEqual(object.value, { ...pen, name: "Pen v2" });
  });

  test("without a hash, every watch of the stream reads again, and no other", async () => {
    const { socket, before } = await watching();
    socket.deliver({ event: "shop.Product.resync", data: { filters: {}, query: null }, pos: 3 });
    assert.deepEqual(sentFrom(socket, before), [
      ["shop.Product.list#stock", { filters: { in_stock: true }, page: 2 }],
      ["shop.Product.search#found", { query: "pe" }],
      ["shop.Product.retrieve#one", { id: 7 }],
    ]);
  });

  test("a resync of another stream, a reply, or a stopped watch reads nothing", async () => {
    const { socket, stock, before } = await watching();
    socket.deliver({ event: "shop.Other.resync#stock", data: {} });
    socket.deliver({ event: "shop.Product.resync#stock", data: {}, request_id: 99 });
    socket.deliver({ event: "shop.Product.resync#nobody", data: {} });
    stock.stop();
    const stopped = socket.sent.length;
    socket.deliver({ event: "shop.Product.resync#stock", data: {} });
    assert.deepEqual(sentFrom(socket, before), [["shop.Product.unsubscribe#stock", { filters: { in_stock: true } }]]);
    assert.equal(socket.sent.length, stopped);
  });

  test("listeners still get the resync frame", async () => {
    const { client, socket } = await watching();
    const exact = recorder();
    const any = recorder();
    client.on("shop.Product.resync#stock", exact.handler);
    client.on("shop.Product.resync", any.handler);
    const frame = { event: "shop.Product.resync#stock", data: { filters: { in_stock: true }, query: null }, pos: 5 };
    socket.deliver(frame);
    socket.deliver({ event: "shop.Product.resync", data: { filters: {}, query: null } });
    assert.deepEqual(exact.list, [[frame.data, frame]]);
    assert.equal(any.list.length, 2);
  });

  test("the reply of the latest read wins, in whatever order replies come", async () => {
    const { socket, stock, before } = await watching();
    socket.deliver({ event: "shop.Product.resync#stock", data: {} });
    socket.deliver({ event: "shop.Product.resync#stock", data: {} });
    assert.equal(socket.sent.length, before + 2);
    socket.reply(page([pad]), before + 1);
    socket.reply(page([ink]), before);
    await flush();
    assert.deepEqual(stock.rows, [pad]);
  });

  test("an object watch keeps the reply of its latest read too", async () => {
    const { socket, object, before } = await watching();
    socket.deliver({ event: "shop.Product.resync#one", data: {} });
    socket.deliver({ event: "shop.Product.resync#one", data: {} });
    socket.reply({ ...pen, name: "newer" }, before + 1);
    socket.reply({ ...pen, name: "older" }, before);
    await flush();
    assert.equal(object.value.name, "newer");
  });
});

describe("resuming after a reconnect", () => {
  beforeEach((t) => {
    fakeTimers(t);
    fixRandom(t, 0.5);
  });

  const first = { client_id: "c1", user_id: null, authenticated: false, channels: [], resume: { token: "tok-1", window: 60 } };
  const second = { ...first, client_id: "c2", resume: { token: "tok-2", window: 60 } };
  const third = { ...first, client_id: "c3", resume: { token: "tok-3", window: 60 } };

  /**
   * A client connected with the token "tok-1", watching a list (#stock), an object (#one)
   * and subscribed to a collection (#all), all loaded; then pushes numbered 1 to 3.
   */
  async function watching(options = {}) {
    const { client, Socket } = makeClient(options);
    const connecting = client.connect();
    const socket = Socket.last;
    socket.handshake(first);
    await connecting;
    const list = client.watchList("shop.Product", { filters: { in_stock: true } }, { hash: "stock" });
    const object = client.watchObject("shop.Product", 7, { hash: "one" });
    client.subscribe("shop.Order", { filters: {} }, { hash: "all" });
    socket.reply(page([pen, ink]), 0);
    socket.reply(pen, 1);
    socket.reply({ subscribed: true }, 2);
    await flush();
    socket.deliver({ event: "shop.Product.retrieve#stock", data: pad, pos: 1 });
    socket.deliver({ event: "notify", data: { hello: 1 }, pos: 2 });
    socket.deliver({ event: "shop.Product.retrieve#one", data: { ...pen, name: "Pen v2" }, pos: 3 });
    const resumes = recorder();
    client.on("resume", resumes.handler);
    return { client, Socket, socket, list, object, resumes };
  }

  /** Drops the socket, waits the back-off, opens the next one with `data`. */
  async function reconnect(t, Socket, data = second) {
    Socket.last.drop();
    t.mock.timers.tick(500);
    Socket.last.handshake(data);
    await flush();
    return Socket.last;
  }

  const reloads = [
    ["shop.Product.list#stock", { filters: { in_stock: true } }],
    ["shop.Product.retrieve#one", { id: 7 }],
    ["shop.Order.subscribe#all", { filters: {} }],
  ];

  test("sends resume first, with the last token and pos, and nothing else until its reply", async (t) => {
    const { client, Socket } = await watching();
    Socket.last.drop();
    client.retrieve("shop.Product", 9).catch(() => {});
    t.mock.timers.tick(500);
    assert.match(Socket.last.url, /[?&]resume=1$/);
    Socket.last.handshake(second);
    await flush();
    const again = Socket.last;
    assert.equal(again.sent.length, 1);
    assert.deepEqual(again.sent[0], { event: "resume", data: { token: "tok-1", pos: 3 }, request_id: 5 });
  });

  test("resumed: nothing is read again, missed pushes apply, the queue is sent, token and pos are adopted", async (t) => {
    const { client, Socket, list, object, resumes } = await watching();
    const reconnects = recorder();
    client.on("reconnect", reconnects.handler);
    Socket.last.drop();
    const queued = client.retrieve("shop.Product", 9);
    t.mock.timers.tick(500);
    const again = Socket.last;
    again.handshake(second);
    await flush();
    // the server replays what was missed, with its original pos, then replies
    again.deliver({ event: "shop.Product.delete#stock", data: { id: 8 }, pos: 4 });
    again.deliver({ event: "shop.Product.retrieve#one", data: { ...pen, name: "Pen v3" }, pos: 5 });
    again.reply({ resumed: true, token: "tok-1", pos: 5 }, 0);
    await flush();
    assert.deepEqual(sentFrom(again, 1), [["shop.Product.retrieve", { id: 9 }]]);
    assert.deepEqual(list.rows, [pen, pad]);
    assert.equal(object.value.name, "Pen v3");
    assert.deepEqual(resumes.list, [[{ resumed: true }]]);
    assert.equal(reconnects.list.length, 1);
    again.reply(pad, 1);
    assert.deepEqual(await queued, pad);

    again.deliver({ event: "notify", data: {}, pos: 6 });
    const third_ = await reconnect(t, Socket, third);
    assert.deepEqual(sentFrom(third_), [["resume", { token: "tok-1", pos: 6 }]]);
  });

  test("not resumed: every watch reads again, every subscription is made again, the new token is kept", async (t) => {
    const { Socket, list, resumes } = await watching();
    const again = await reconnect(t, Socket);
    again.reply({ resumed: false }, 0);
    await flush();
    assert.deepEqual(sentFrom(again, 1), reloads);
    assert.deepEqual(resumes.list, [[{ resumed: false }]]);
    again.reply(page([ink]), 1);
    await flush();
    assert.deepEqual(list.rows, [ink]);
    // from now on the client holds the new connection, numbered from 1
    again.deliver({ event: "shop.Product.retrieve#stock", data: pen, pos: 1 });
    const last = await reconnect(t, Socket, third);
    assert.deepEqual(sentFrom(last), [["resume", { token: "tok-2", pos: 1 }]]);
  });

  test("an error reply to resume falls back to reading everything again", async (t) => {
    const { Socket, resumes } = await watching();
    const again = await reconnect(t, Socket);
    again.fail({ status: 400, code: "invalid", detail: { token: ["Resume before subscribing to anything."] } }, 0);
    await flush();
    assert.deepEqual(sentFrom(again, 1), reloads);
    assert.equal(resumes.list.length, 1);
    const [[{ resumed, error }]] = resumes.list;
    assert.equal(resumed, false);
    assert.equal(error.code, "invalid");
  });

  test("no reply to resume within the timeout falls back to reading everything again", async (t) => {
    const { Socket, resumes } = await watching({ timeout: 3000 });
    const again = await reconnect(t, Socket);
    t.mock.timers.tick(2999);
    await flush();
    assert.equal(again.sent.length, 1);
    t.mock.timers.tick(1);
    await flush();
    assert.deepEqual(sentFrom(again, 1), reloads);
    assert.equal(resumes.list[0][0].error.code, "timeout");
  });

  test("replies never count as pos, only numbered pushes do", async (t) => {
    const { client, Socket, socket } = await watching();
    const reading = client.retrieve("shop.Product", 8);
    socket.deliver({ event: "shop.Product.retrieve", data: ink, request_id: socket.sent.at(-1).request_id, pos: 99 });
    await reading;
    socket.deliver({ event: "connection", data: first, request_id: "asked", pos: 50 });
    socket.deliver({ event: "notify", data: {}, pos: "40" });
    socket.deliver({ event: "notify", data: {}, pos: 2.5 });
    socket.deliver({ event: "shop.Product.retrieve#stock", data: pad }); // not numbered
    const again = await reconnect(t, Socket);
    assert.deepEqual(sentFrom(again), [["resume", { token: "tok-1", pos: 3 }]]);
  });

  test("with a remembered authorize, authorize comes first, then resume", async (t) => {
    const { client, Socket, socket } = await watching();
    const authorizing = client.authorize("user-token");
    const user = { ...first, user_id: 3, authenticated: true };
    socket.reply(user);
    await authorizing;
    const again = await reconnect(t, Socket);
    assert.deepEqual(sentFrom(again), [["authorize", { token: "user-token" }]]);
    again.reply({ ...second, user_id: 3, authenticated: true });
    again.deliver({ event: "connection", data: { ...second, user_id: 3, authenticated: true } });
    await flush();
    assert.deepEqual(sentFrom(again, 1), [["resume", { token: "tok-1", pos: 3 }]]);
    again.reply({ resumed: true, token: "tok-1", pos: 3 });
    await flush();
    assert.equal(again.sent.length, 2);
  });

  test("a connection frame without a resume token: the next reconnect reads everything again", async (t) => {
    const { client, Socket } = makeClient();
    const connecting = client.connect();
    Socket.last.handshake({ client_id: "c1", user_id: null, authenticated: false, channels: [] });
    await connecting;
    client.watchObject("shop.Product", 7, { hash: "one" });
    Socket.last.reply(pen);
    Socket.last.deliver({ event: "notify", data: {}, pos: 1 });
    await flush();
    const again = await reconnect(t, Socket);
    assert.deepEqual(sentFrom(again), [["shop.Product.retrieve#one", { id: 7 }]]);
  });

  test("a drop before the reply keeps the old session for the next socket", async (t) => {
    const { Socket, resumes } = await watching();
    const cut = await reconnect(t, Socket);
    cut.deliver({ event: "shop.Product.retrieve#stock", data: pad, pos: 1 }); // whose numbering?
    const last = await reconnect(t, Socket, third);
    assert.deepEqual(sentFrom(cut), [["resume", { token: "tok-1", pos: 3 }]]);
    assert.deepEqual(sentFrom(last), [["resume", { token: "tok-1", pos: 3 }]]);
    assert.deepEqual(resumes.list, []);
    last.reply({ resumed: true, token: "tok-1", pos: 3 });
    await flush();
    assert.equal(last.sent.length, 1);
  });

  test("a drop right after a refusal: the next socket resumes the new session, and reads again what was cut off", async (t) => {
    const { Socket } = await watching();
    const cut = await reconnect(t, Socket);
    cut.reply({ resumed: false }, 0);
    cut.drop();
    await flush();
    assert.equal(cut.sent.length, 1);
    t.mock.timers.tick(500);
    const last = Socket.last;
    last.handshake(third);
    await flush();
    assert.deepEqual(sentFrom(last), [["resume", { token: "tok-2", pos: 0 }]]);
    last.reply({ resumed: true, token: "tok-2", pos: 0 });
    await flush();
    assert.deepEqual(sentFrom(last, 1), reloads);
  });

  test("the reply's pos is adopted, whatever was replayed before it", async (t) => {
    const { Socket } = await watching();
    const again = await reconnect(t, Socket);
    again.deliver({ event: "notify", data: {}, pos: 4 });
    again.reply({ resumed: true, token: "tok-1", pos: 6 }, 0);
    await flush();
    const last = await reconnect(t, Socket, third);
    assert.deepEqual(sentFrom(last), [["resume", { token: "tok-1", pos: 6 }]]);
  });

  test("frames right after the reply count on the resumed session", async (t) => {
    const { Socket } = await watching();
    const again = await reconnect(t, Socket);
    again.reply({ resumed: true, token: "tok-1", pos: 7 }, 0);
    again.deliver({ event: "notify", data: {}, pos: 8 });
    const last = await reconnect(t, Socket, third);
    assert.deepEqual(sentFrom(last), [["resume", { token: "tok-1", pos: 8 }]]);
  });

  test("resumed: watches and subscriptions the server does not hold are made", async (t) => {
    const { client, Socket, socket } = await watching();
    client.watchObject("shop.Product", 8, { hash: "cut" }); // its read is cut off
    client.subscribe("shop.Order", 5, { hash: "cut" }).catch(() => {}); // and this subscribe
    assert.equal(socket.sent.length, 5);
    Socket.last.drop();
    const late = client.watchList("shop.Order", {}, { hash: "late" }); // made during the outage
    t.mock.timers.tick(500);
    const again = Socket.last;
    again.handshake(second);
    await flush();
    again.reply({ resumed: true, token: "tok-1", pos: 3 });
    await flush();
    assert.deepEqual(sentFrom(again, 1), [
      ["shop.Product.retrieve#cut", { id: 8 }],
      ["shop.Order.list#late", {}],
      ["shop.Order.subscribe#cut", { id: 5 }],
    ]);
    again.reply(page([pad]), 2);
    await flush();
    assert.deepEqual(late.rows, [pad]);
  });

  test("resumed: watches stopped meanwhile are unsubscribed on the server", async (t) => {
    const { client, Socket, socket, list } = await watching();
    const gone = client.watchObject("shop.Product", 9, { hash: "gone" });
    const cutOff = client.watchObject("shop.Product", 10, { hash: "cutoff" });
    socket.reply(pad, 3);
    socket.reply({ id: 10 }, 4);
    await flush();
    cutOff.stop(); // its unsubscribe is sent, then cut off
    Socket.last.drop();
    list.stop();
    gone.stop();
    t.mock.timers.tick(500);
    const again = Socket.last;
    again.handshake(second);
    await flush();
    again.reply({ resumed: true, token: "tok-1", pos: 3 });
    await flush();
    assert.deepEqual(sentFrom(again, 1).sort(), [
      ["shop.Product.unsubscribe#cutoff", { id: 10 }],
      ["shop.Product.unsubscribe#gone", { id: 9 }],
      ["shop.Product.unsubscribe#stock", { filters: { in_stock: true } }],
    ]);
  });

  test("not resumed: watches stopped meanwhile are forgotten, not unsubscribed", async (t) => {
    const { Socket, list } = await watching();
    Socket.last.drop();
    list.stop();
    t.mock.timers.tick(500);
    const again = Socket.last;
    again.handshake(second);
    await flush();
    again.reply({ resumed: false });
    await flush();
    assert.deepEqual(sentFrom(again, 1), reloads.slice(1));
  });

  test("a resync replayed before the reply reads that watch once, after the reply", async (t) => {
    const { Socket } = await watching();
    const again = await reconnect(t, Socket);
    again.deliver({ event: "shop.Product.resync#stock", data: { filters: { in_stock: true }, query: null }, pos: 4 });
    assert.equal(again.sent.length, 1);
    again.reply({ resumed: true, token: "tok-1", pos: 4 }, 0);
    await flush();
    assert.deepEqual(sentFrom(again, 1), [["shop.Product.list#stock", { filters: { in_stock: true } }]]);
  });

  test("'resume' listeners get the outcome only; '*' listeners see the reply", async (t) => {
    const { client, Socket, resumes } = await watching();
    const all = recorder();
    client.on("*", all.handler);
    const again = await reconnect(t, Socket);
    again.reply({ resumed: true, token: "tok-1", pos: 3 }, 0);
    await flush();
    assert.deepEqual(resumes.list, [[{ resumed: true }]]);
    assert.deepEqual(
      all.list.map(([data, frame]) => [frame.event, data]),
      [
        ["connection", second],
        ["resume", { resumed: true, token: "tok-1", pos: 3 }],
      ],
    );
  });

  test("close() forgets the session: connect() after it reads everything again", async () => {
    const { client, Socket } = await watching();
    client.close();
    client.connect();
    Socket.last.handshake(second);
    await flush();
    assert.deepEqual(sentFrom(Socket.last), reloads);
  });

  test("with resume: false, the URL has no resume=1, and a reconnect reads everything again", async (t) => {
    const { Socket } = await watching({ resume: false });
    assert.equal(Socket.last.url, "ws://example.test/ws/");
    const again = await reconnect(t, Socket);
    assert.equal(again.url, "ws://example.test/ws/");
    assert.deepEqual(sentFrom(again), reloads);
  });
});

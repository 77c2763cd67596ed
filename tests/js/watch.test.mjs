// watchObject and watchList: live values kept from replies and pushes.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { connectedClient, fakeTimers, flush, makeClient, recorder } from "./helpers.mjs";

const pen = { id: 7, name: "Pen", price: "1.50" };
const ink = { id: 8, name: "Ink", price: "3.00" };
const pad = { id: 9, name: "Pad", price: "2.25" };

describe("watchObject", () => {
  beforeEach((t) => fakeTimers(t));

  test("retrieves under a generated hash and keeps value from its pushes", async () => {
    const { client, socket } = await connectedClient();
    const changes = recorder();
    const handle = client.watchObject("shop.Product", 7, { onChange: changes.handler });
    assert.equal(handle.hash, "w1");
    assert.deepEqual(socket.sent, [{ event: "shop.Product.retrieve#w1", data: { id: 7 }, request_id: 1 }]);
    assert.equal(handle.value, undefined);
    socket.reply(pen);
    await flush();
    assert.deepEqual(handle.value, pen);
    const renamed = { ...pen, name: "Fountain pen" };
    socket.deliver({ event: "shop.Product.retrieve#w1", data: renamed });
    assert.deepEqual(handle.value, renamed);
    socket.deliver({ event: "shop.Product.delete#w1", data: { id: 7 } });
    assert.equal(handle.value, null);
    assert.deepEqual(changes.list, [[pen], [renamed], [null]]);
  });

  test("ignores pushes of another hash, another id, and replies", async () => {
    const { client, socket } = await connectedClient();
    const changes = recorder();
    const handle = client.watchObject("shop.Product", "7", { hash: "main", onChange: changes.handler });
    socket.reply(pen);
    await flush();
    socket.deliver({ event: "shop.Product.retrieve#side", data: { ...pen, name: "other hash" } });
    socket.deliver({ event: "shop.Product.delete#side", data: { id: 7 } });
    socket.deliver({ event: "shop.Product.delete", data: { id: 7 } });
    socket.deliver({ event: "shop.Product.retrieve#main", data: ink });
    socket.deliver({ event: "shop.Product.retrieve#main", data: { ...pen, name: "reply" }, request_id: 99 });
    socket.deliver({ event: "shop.Other.retrieve#main", data: { ...pen, name: "other stream" } });
    assert.deepEqual(handle.value, pen);
    assert.deepEqual(changes.list, [[pen]]);
    // "7" and 7 are the same key
    socket.deliver({ event: "shop.Product.retrieve#main", data: { ...pen, name: "pushed" } });
    assert.equal(handle.value.name, "pushed");
  });

  test("stop() unsubscribes and stops listening", async () => {
    const { client, socket } = await connectedClient();
    const handle = client.watchObject("shop.Product", 7);
    socket.reply(pen);
    await flush();
    handle.stop();
    assert.deepEqual(socket.sent.at(-1), { event: "shop.Product.unsubscribe#w1", data: { id: 7 }, request_id: 2 });
    socket.deliver({ event: "shop.Product.retrieve#w1", data: { ...pen, name: "after stop" } });
    assert.deepEqual(handle.value, pen);
    handle.stop();
    assert.equal(socket.sent.length, 2);
  });

  test("without id, the hash is the key", async () => {
    const { client, socket } = await connectedClient();
    const handle = client.watchObject("shop.Product", null, { hash: 7 });
    assert.deepEqual(socket.sent, [{ event: "shop.Product.retrieve#7", data: {}, request_id: 1 }]);
    socket.reply(pen);
    await flush();
    socket.deliver({ event: "shop.Product.delete#7", data: { id: 7 } });
    assert.equal(handle.value, null);
    handle.stop();
    assert.deepEqual(socket.sent.at(-1), { event: "shop.Product.unsubscribe#7", data: {}, request_id: 2 });
  });

  test("a failed retrieve goes to onError", async () => {
    const { client, socket } = await connectedClient();
    const errors = recorder();
    client.watchObject("shop.Product", 404, { onError: errors.handler });
    socket.fail({ status: 404, code: "not_found", detail: "Not found." });
    await flush();
    assert.equal(errors.list.length, 1);
    assert.equal(errors.list[0][0].code, "not_found");
  });

  test("a failed retrieve without onError goes to the client's 'error' listeners", async () => {
    const { client, socket } = await connectedClient();
    const errors = recorder();
    client.on("error", errors.handler);
    client.watchObject("shop.Product", 1);
    socket.fail({ status: 403, code: "permission_denied", detail: "No." });
    await flush();
    assert.deepEqual(
      errors.list.map(([error]) => [error.status, error.code, error.event]),
      [[403, "permission_denied", "shop.Product.retrieve#w1"]],
    );
  });

  test("a watch made before connecting retrieves once connected", async () => {
    const { client, Socket } = makeClient();
    const handle = client.watchObject("shop.Product", 7);
    client.connect();
    Socket.last.handshake();
    await flush();
    assert.deepEqual(Socket.last.events(), ["shop.Product.retrieve#w1"]);
    Socket.last.reply(pen);
    await flush();
    assert.deepEqual(handle.value, pen);
  });
});

describe("watchList", () => {
  beforeEach((t) => fakeTimers(t));

  async function watched(params = {}, options = {}) {
    const setup = await connectedClient();
    const changes = recorder();
    const handle = setup.client.watchList("shop.Product", params, { onChange: changes.handler, ...options });
    setup.socket.reply({ page: 1, limit: 25, count: 2, rows: [pen, ink] });
    await flush();
    return { ...setup, handle, changes };
  }

  test("lists under a generated hash and fills rows, count, page, limit", async () => {
    const { socket, handle, changes } = await watched({ filters: { in_stock: true } });
    assert.deepEqual(socket.sent, [{ event: "shop.Product.list#w1", data: { filters: { in_stock: true } }, request_id: 1 }]);
    assert.deepEqual(handle.rows, [pen, ink]);
    assert.equal(handle.count, 2);
    assert.equal(handle.page, 1);
    assert.equal(handle.limit, 25);
    assert.deepEqual(changes.list, [[[pen, ink]]]);
  });

  test("a retrieve push replaces the row with its id, in place", async () => {
    const { socket, handle, changes } = await watched();
    const cheaper = { ...pen, price: "1.00" };
    socket.deliver({ event: "shop.Product.retrieve#w1", data: cheaper });
    assert.deepEqual(handle.rows, [cheaper, ink]);
    assert.equal(handle.count, 2);
    assert.deepEqual(changes.list.at(-1), [[cheaper, ink]]);
  });

  test("a retrieve push of a new row appends it and counts it", async () => {
    const { socket, handle } = await watched();
    socket.deliver({ event: "shop.Product.retrieve#w1", data: pad });
    assert.deepEqual(handle.rows, [pen, ink, pad]);
    assert.equal(handle.count, 3);
  });

  test("a delete push removes the row; an unknown id changes nothing", async () => {
    const { socket, handle, changes } = await watched();
    socket.deliver({ event: "shop.Product.delete#w1", data: { id: 7 } });
    assert.deepEqual(handle.rows, [ink]);
    assert.equal(handle.count, 1);
    const calls = changes.list.length;
    socket.deliver({ event: "shop.Product.delete#w1", data: { id: 12345 } });
    assert.deepEqual(handle.rows, [ink]);
    assert.equal(handle.count, 1);
    assert.equal(changes.list.length, calls);
  });

  test("replies, even under the watch's hash, are not upserted", async () => {
    const { client, socket, handle } = await watched();
    const reading = client.retrieve("shop.Product", 9, { hash: "w1" });
    socket.reply(pad);
    await reading;
    assert.deepEqual(handle.rows, [pen, ink]);
  });

  test("rows is a new array after each change", async () => {
    const { socket, handle } = await watched();
    const before = handle.rows;
    socket.deliver({ event: "shop.Product.retrieve#w1", data: pad });
    assert.notEqual(handle.rows, before);
    assert.deepEqual(before, [pen, ink]);
  });

  test("two watches of one stream keep their pushes apart", async () => {
    const { client, socket } = await connectedClient();
    const left = client.watchList("shop.Product", { filters: { in_stock: true } });
    const right = client.watchList("shop.Product", { filters: { in_stock: false } }, { hash: "out" });
    assert.deepEqual(socket.events(), ["shop.Product.list#w1", "shop.Product.list#out"]);
    socket.reply({ page: 1, limit: 25, count: 1, rows: [pen] }, 0);
    socket.reply({ page: 1, limit: 25, count: 1, rows: [ink] }, 1);
    await flush();
    socket.deliver({ event: "shop.Product.delete#w1", data: { id: 7 } });
    socket.deliver({ event: "shop.Product.retrieve#out", data: { ...pen, in_stock: false } });
    assert.deepEqual(left.rows, []);
    assert.deepEqual(right.rows, [ink, { ...pen, in_stock: false }]);
    socket.deliver({ event: "shop.Product.retrieve", data: pad });
    assert.deepEqual(left.rows, []);
    assert.equal(right.rows.length, 2);
  });

  test("compare keeps rows sorted, loaded and pushed", async () => {
    const byPrice = (a, b) => Number(a.price) - Number(b.price);
    const { socket, handle } = await watched({}, { compare: byPrice });
    assert.deepEqual(handle.rows, [pen, ink]);
    socket.deliver({ event: "shop.Product.retrieve#w1", data: pad });
    assert.deepEqual(handle.rows.map((row) => row.id), [7, 9, 8]);
    socket.deliver({ event: "shop.Product.retrieve#w1", data: { ...pen, price: "5.00" } });
    assert.deepEqual(handle.rows.map((row) => row.id), [9, 8, 7]);
  });

  test("search: true searches, and stop() unsubscribes its filters and query", async () => {
    const { client, socket } = await connectedClient();
    const handle = client.watchList("shop.Product", { query: "pen", limit: 5 }, { search: true, hash: "box" });
    assert.deepEqual(socket.sent, [{ event: "shop.Product.search#box", data: { query: "pen", limit: 5 }, request_id: 1 }]);
    socket.reply({ page: 1, limit: 5, count: 1, rows: [pen] });
    await flush();
    handle.stop();
    assert.deepEqual(socket.sent.at(-1), {
      event: "shop.Product.unsubscribe#box",
      data: { filters: {}, query: "pen" },
      request_id: 2,
    });
    socket.deliver({ event: "shop.Product.retrieve#box", data: ink });
    assert.deepEqual(handle.rows, [pen]);
  });

  test("stop() of a list unsubscribes its filters", async () => {
    const { client, socket, handle } = await watched({ filters: { in_stock: true }, page: 2 });
    handle.stop();
    assert.deepEqual(socket.sent.at(-1), {
      event: "shop.Product.unsubscribe#w1",
      data: { filters: { in_stock: true } },
      request_id: 2,
    });
    assert.equal(client._watches.size, 0);
  });

  test("reload(params) merges the params and lists again", async () => {
    const { socket, handle, changes } = await watched({ filters: { in_stock: true }, limit: 2 });
    const reloading = handle.reload({ page: 2 });
    assert.deepEqual(socket.sent.at(-1), {
      event: "shop.Product.list#w1",
      data: { filters: { in_stock: true }, limit: 2, page: 2 },
      request_id: 2,
    });
    socket.reply({ page: 2, limit: 2, count: 3, rows: [pad] });
    assert.deepEqual(await reloading, [pad]);
    assert.equal(handle.page, 2);
    assert.equal(handle.count, 3);
    assert.deepEqual(changes.list.at(-1), [[pad]]);
  });
});

// Resync frames and resuming a connection after a reconnect.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { connectedClient, fakeTimers, fixRandom, flush, recorder } from "./helpers.mjs";

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

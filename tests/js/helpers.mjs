// Shared set-up for the client's tests.
import { mock } from "node:test";

import { BindingClient } from "../../channels_binding/static/channels_binding/client.js";
import { fakeSocketClass } from "./fake-socket.mjs";

/** Lets promise callbacks run (setImmediate is left real by `fakeTimers`). */
export function flush() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Fake setTimeout and Date for the current test; undone after it by node:test. */
export function fakeTimers(t) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
}

/** Math.random() returns `value` for the current test. */
export function fixRandom(t, value) {
  t.mock.method(Math, "random", () => value);
}

/** A client on a fresh fake socket class: `{client, Socket}`. */
export function makeClient(options = {}, url = "ws://example.test/ws/") {
  const Socket = fakeSocketClass();
  const client = new BindingClient(url, { WebSocket: Socket, ...options });
  return { client, Socket };
}

/** A client connected to its first fake socket: `{client, Socket, socket, connection}`. */
export async function connectedClient(options = {}) {
  const { client, Socket } = makeClient(options);
  const connecting = client.connect();
  const socket = Socket.last;
  socket.handshake();
  const connection = await connecting;
  return { client, Socket, socket, connection };
}

/** Collects the calls of a handler: `calls.handler`, `calls.list`. */
export function recorder() {
  const list = [];
  return { list, handler: (...args) => list.push(args) };
}

export { mock };

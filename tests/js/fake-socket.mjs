// A stand-in for the browser's WebSocket: records what the client sends and lets a test
// play the server (open, deliver frames, close).

/** A fresh FakeSocket class per test, with its own list of instances. */
export function fakeSocketClass() {
  return class FakeSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    static instances = [];

    /** The socket made last. */
    static get last() {
      return this.instances.at(-1);
    }

    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = FakeSocket.CONNECTING;
      this.sent = []; // frames the client sent, parsed
      this.closedWith = null; // {code, reason} when the client closed it
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      FakeSocket.instances.push(this);
    }

    send(text) {
      if (this.readyState !== FakeSocket.OPEN) throw new Error("send() on a socket that is not open");
      this.sent.push(JSON.parse(text));
    }

    /** The client closes: like a browser, the close event comes later. */
    close(code = 1000, reason = "") {
      this.closedWith = { code, reason };
      this.readyState = FakeSocket.CLOSED;
      queueMicrotask(() => this.onclose?.({ code, reason, wasClean: true }));
    }

    // -- the server's side ---------------------------------------------------------

    open() {
      this.readyState = FakeSocket.OPEN;
      this.onopen?.({});
    }

    /** Opens, then sends the `connection` frame. */
    handshake(data = { client_id: "c1", user_id: null, authenticated: false, channels: [] }) {
      this.open();
      this.deliver({ event: "connection", data });
    }

    deliver(frame) {
      this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }

    /** Replies to the request sent at `index` (the last one by default). */
    reply(data, index = -1) {
      const request = this.sent.at(index);
      this.deliver({ event: request.event, data, request_id: request.request_id });
    }

    /** Answers the request at `index` with an error frame. */
    fail(error, index = -1) {
      const request = this.sent.at(index);
      this.deliver({ event: request.event, error, request_id: request.request_id });
    }

    /** The server (or the network) drops the connection. */
    drop(code = 1006, reason = "") {
      this.readyState = FakeSocket.CLOSED;
      this.onclose?.({ code, reason, wasClean: false });
    }

    /** A failed socket as Node 20's WebSocket reports it: an error event, no close. */
    error() {
      this.onerror?.({ type: "error" });
    }

    /** A failed socket as browsers report it: closed, then error and close events. */
    failConnection(code = 1006) {
      this.readyState = FakeSocket.CLOSED;
      this.onerror?.({ type: "error" });
      this.onclose?.({ code, reason: "", wasClean: false });
    }

    events() {
      return this.sent.map((frame) => frame.event);
    }
  };
}

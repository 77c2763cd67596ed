/**
 * channels-binding JavaScript client: one websocket, requests matched to replies by
 * request_id, listeners by event, live objects and lists, automatic reconnect that
 * resumes the server's subscriptions when it can.
 * A plain ES module with no dependency. See docs/javascript.rst.
 */

const SUBPROTOCOL = "channels-binding";
const DEFAULT_RECONNECT = { initial: 500, max: 10000, factor: 2 };
const RESYNC = ".resync";

/**
 * An error frame from the server (`status`, `code`, `detail` as sent), or a failure of
 * the client itself, with `status` 0 and `code` "timeout", "disconnected" or "closed".
 */
export class BindingError extends Error {
  /**
   * @param {{status?: number, code: string, detail?: string|object}} error
   * @param {string|null} [event] the event of the request or of the error frame
   */
  constructor({ status = 0, code, detail = "" }, event = null) {
    super(typeof detail === "string" ? detail : `${code}: ${JSON.stringify(detail)}`);
    this.name = "BindingError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.event = event;
  }
}

/** `${stream}.${action}`, plus `#hash` when a hash is given. */
function eventName(stream, action, hash) {
  return hash == null || hash === "" ? `${stream}.${action}` : `${stream}.${action}#${hash}`;
}

function sameId(a, b) {
  return a != null && b != null && String(a) === String(b);
}

function isPush(frame) {
  return frame.request_id === undefined;
}

/** `{id}` for a key, the object itself for `{id}` or `{filters, query}`, else `{}`. */
function targetData(target) {
  if (target == null) return {};
  return typeof target === "object" ? target : { id: target };
}

/** `url` with `resume=1` in its query string, unless it says `resume=` already. */
function withResume(url) {
  const resolved = new URL(url);
  if (resolved.searchParams.has("resume")) return url;
  resolved.search = resolved.search ? `${resolved.search}&resume=1` : "?resume=1";
  return resolved.href;
}

/** An absolute ws:// or wss:// address; a relative one is resolved against the page. */
function resolveUrl(url) {
  const base = globalThis.location?.href;
  if (!base && !/^wss?:\/\//.test(url)) {
    throw new TypeError(`Give an absolute ws:// or wss:// URL outside a browser, not "${url}".`);
  }
  const resolved = new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.href;
}

/** A client of one channels-binding websocket endpoint. */
export class BindingClient {
  /**
   * @param {string} url websocket address; "/ws/" is resolved against the page (ws: or wss:)
   * @param {object} [options]
   * @param {string} [options.token] authenticate in the handshake (subprotocol "token.<token>")
   * @param {Function} [options.WebSocket] WebSocket class, `globalThis.WebSocket` by default
   * @param {{initial?: number, max?: number, factor?: number}|false} [options.reconnect]
   *   back-off in ms (500, 10000, 2 by default), or false not to reconnect
   * @param {number} [options.timeout] ms to wait for a reply (10000); 0 waits for ever
   * @param {boolean} [options.resume] ask for numbered pushes (`?resume=1`) and resume the
   *   server's subscriptions after a reconnect (true)
   */
  constructor(url, options = {}) {
    const { token = null, WebSocket = globalThis.WebSocket, reconnect, timeout = 10000, resume = true } = options;
    this.url = resolveUrl(url);
    this.token = token;
    this.timeout = timeout;
    this.resume = resume !== false;
    /** @type {object|null} data of the last `connection` frame */
    this.connection = null;
    /** true from the `connection` frame until the socket closes */
    this.connected = false;
    this._WebSocket = WebSocket;
    this._backoff = reconnect === false ? null : { ...DEFAULT_RECONNECT, ...reconnect };
    this._socket = null;
    this._ready = false; // connected and resumed: requests are sent at once
    this._stopped = false;
    this._everConnected = false;
    this._attempt = 0;
    this._timer = null;
    this._waiting = null; // the promise of connect()
    this._nextId = 1;
    this._pending = new Map(); // request_id -> {frame, resolve, reject, timeout, sent, timer}
    this._queue = []; // request_ids waiting for the connection
    this._listeners = new Map(); // name -> Set of {handler}
    this._watches = new Set();
    this._subscriptions = new Map(); // key -> {event, data, queued, current}
    this._auth = undefined; // token given to authorize(); undefined when never called
    this._hashes = 0;
    // Resume: `_session` is the server-side connection whose subscriptions this client
    // holds, {token, pos} (the highest `pos` received from it), or null. While a new
    // socket is restored, `_fresh` is that socket's own, until `_restore` settles which
    // of the two the client holds from then on.
    this._session = null;
    this._fresh = null;
    this._restoring = false;
    this._unwatched = []; // unsubscribes a resumed server still needs (watches stopped meanwhile)
  }

  /**
   * Opens the socket (and keeps reopening it after a drop, until close()).
   * @returns {Promise<object>} the `connection` data, once connected (and re-authorized)
   */
  connect() {
    if (this._ready) return Promise.resolve(this.connection);
    this._stopped = false;
    if (!this._waiting) {
      const waiting = {};
      waiting.promise = new Promise((resolve, reject) => Object.assign(waiting, { resolve, reject }));
      this._waiting = waiting;
    }
    if (!this._socket && !this._timer) this._open();
    return this._waiting.promise;
  }

  /** Closes the socket for good: no reconnect; pending and queued requests are rejected ("closed"). */
  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    this._timer = null;
    const socket = this._detach();
    this._queue = [];
    this._session = null; // a closed client starts afresh: no resume after connect()
    this._unwatched = [];
    const closed = { code: "closed", detail: "The client was closed." };
    this._rejectAll(() => true, closed);
    this._settleConnect(new BindingError(closed));
    if (socket) this._emit("close", { code: 1000, reason: "", reconnectIn: null });
  }

  /**
   * Sends `{event, data, request_id}`; queued while disconnected, sent after (re)connect.
   * @param {string} event e.g. "shop.Product.retrieve#sidebar"
   * @param {object} [data]
   * @param {{timeout?: number}} [options] overrides the client's timeout (ms)
   * @returns {Promise<any>} the reply's data; rejected with a BindingError
   */
  request(event, data = {}, { timeout = this.timeout } = {}) {
    return this._call(event, data, timeout, false);
  }

  /** @returns {Promise<object>} the object; watches it (auto-subscribe) */
  retrieve(stream, id, { hash } = {}) {
    return this.request(eventName(stream, "retrieve", hash), targetData(id));
  }

  /** @returns {Promise<{page, limit, count, rows}>} `params`: page, limit, ordering, filters */
  list(stream, params = {}, { hash } = {}) {
    return this.request(eventName(stream, "list", hash), params);
  }

  /** @returns {Promise<{page, limit, count, rows}>} a text search over the search_fields */
  search(stream, query, params = {}, { hash } = {}) {
    return this.request(eventName(stream, "search", hash), { ...params, query });
  }

  /** @returns {Promise<object>} the new object */
  create(stream, fields, { hash } = {}) {
    return this.request(eventName(stream, "create", hash), fields);
  }

  /** @returns {Promise<object>} the object after a partial update */
  update(stream, id, fields = {}, { hash } = {}) {
    return this.request(eventName(stream, "update", hash), { ...fields, id });
  }

  /** @returns {Promise<{success: true, id}>} updates when `fields.id` names an object, else creates */
  save(stream, fields, { hash } = {}) {
    return this.request(eventName(stream, "save", hash), fields);
  }

  /** @returns {Promise<{success: true, id}>} */
  delete(stream, id, { hash } = {}) {
    return this.request(eventName(stream, "delete", hash), targetData(id));
  }

  /**
   * Watches without reading; made again after every reconnect, until unsubscribe().
   * @param {string} stream
   * @param {string|number|object} target a key, `{id}`, or `{filters, query}` for a collection
   * @returns {Promise<{subscribed: true}>}
   */
  subscribe(stream, target, { hash } = {}) {
    const key = JSON.stringify([stream, hash ?? "", targetData(target)]);
    const event = eventName(stream, "subscribe", hash);
    // queued: sent with the queue after the reconnect; current: the server has it
    const entry = { event, data: targetData(target), queued: !this._ready, current: false };
    this._subscriptions.set(key, entry);
    return this._subscribe(entry).catch((error) => {
      if (error.status && this._subscriptions.get(key) === entry) this._subscriptions.delete(key);
      throw error;
    });
  }

  /** Ends a subscription addressed as it was made (same hash and target). */
  unsubscribe(stream, target, { hash } = {}) {
    this._subscriptions.delete(JSON.stringify([stream, hash ?? "", targetData(target)]));
    return this._unsubscribe([eventName(stream, "unsubscribe", hash), targetData(target)]);
  }

  /**
   * Changes the connection's user (null: anonymous) and remembers it for reconnects.
   * @returns {Promise<object>} the new connection data
   */
  async authorize(token) {
    const data = await this.request("authorize", token == null ? {} : { token });
    this._auth = token ?? null;
    this.connection = data;
    return data;
  }

  /** @returns {Promise<number>} the round trip of a ping, in ms */
  async ping() {
    const start = Date.now();
    await this.request("ping");
    return Date.now() - start;
  }

  /**
   * Calls `handler(data, frame)` for pushes, notifications and replies whose event is
   * `name`: exact with a hash ("shop.Product.retrieve#sidebar"), without one (any hash),
   * or "*" (every frame). Lifecycle events: "open" and "reconnect" (connection data),
   * "close" ({code, reason, reconnectIn}), "error" (a BindingError nobody awaits, frame),
   * "resume" ({resumed, error?}: whether the server kept the subscriptions over a reconnect).
   * @returns {Function} removes the listener
   */
  on(name, handler) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    const listeners = this._listeners.get(name);
    const entry = { handler };
    listeners.add(entry);
    return () => listeners.delete(entry);
  }

  /**
   * Keeps `handle.value` equal to the object: retrieves it, replaces it from its
   * `retrieve` pushes, sets it to null on its `delete` push. Reloaded after reconnects.
   * Without `id`, the hash is the key (`watchObject("shop.Product", null, {hash: 42})`).
   * @param {{hash?: string, onChange?: Function, onError?: Function}} [options] the hash
   *   defaults to a new one ("w1", "w2", ...), so that this watch's pushes are its own
   * @returns {{value: object|null|undefined, hash: string, stop: Function, reload: Function}}
   */
  watchObject(stream, id, { hash = this._newHash(), onChange, onError } = {}) {
    const handle = { value: undefined, hash };
    const set = (value) => {
      handle.value = value;
      onChange?.(value);
    };
    const mine = (data, frame) => isPush(frame) && sameId(data?.id, id ?? hash); // no id: the hash is the key
    let loads = 0;
    const watch = {
      stream,
      hash,
      current: false, // loaded since the server last lost this client's subscriptions
      onError,
      load: async () => {
        const load = ++loads;
        watch.current = false;
        const value = await this.retrieve(stream, id, { hash });
        if (load !== loads) return handle.value; // a later load (a reload, a resync) wins
        watch.current = true;
        set(value);
        return value;
      },
      listeners: [
        this.on(eventName(stream, "retrieve", hash), (data, frame) => mine(data, frame) && set(data)),
        this.on(eventName(stream, "delete", hash), (data, frame) => mine(data, frame) && set(null)),
      ],
      unsubscribe: [eventName(stream, "unsubscribe", hash), targetData(id)],
    };
    handle.reload = () => watch.load();
    handle.stop = () => this._stopWatch(watch);
    this._startWatch(watch);
    return handle;
  }

  /**
   * Keeps `handle.rows` equal to a live list: lists (or searches), then upserts rows by
   * `id` on the `retrieve` pushes of this watch's hash and removes them on `delete`.
   * A pushed row that was not in `rows` is appended, or placed by `compare`: where
   * rows from other pages belong is the application's choice. `count` is adjusted by
   * rows added and removed. `rows` is a new array after each change.
   * @param {object} [params] page, limit, ordering, filters (and query, to search)
   * @param {{hash?: string, onChange?: Function, onError?: Function, search?: boolean,
   *   compare?: Function}} [options] `search`: use the search event; `compare(a, b)`
   *   keeps rows sorted
   * @returns {{rows: object[], count: number, page: number, limit: number, hash: string,
   *   params: object, stop: Function, reload: Function}} `reload(params)` merges params
   */
  watchList(stream, params = {}, options = {}) {
    const { hash = this._newHash(), onChange, onError, search = false, compare } = options;
    const action = search ? "search" : "list";
    const handle = { rows: [], count: 0, page: params.page ?? 1, limit: params.limit, hash };
    handle.params = { ...params };
    const changed = (rows) => {
      handle.rows = compare ? [...rows].sort(compare) : rows;
      onChange?.(handle.rows);
    };
    const upsert = (row) => {
      const found = handle.rows.some((old) => sameId(old.id, row.id));
      if (!found) handle.count += 1;
      changed(found ? handle.rows.map((old) => (sameId(old.id, row.id) ? row : old)) : [...handle.rows, row]);
    };
    const remove = ({ id }) => {
      if (!handle.rows.some((row) => sameId(row.id, id))) return;
      handle.count -= 1;
      changed(handle.rows.filter((row) => !sameId(row.id, id)));
    };
    let loads = 0;
    const load = async () => {
      const mine = ++loads;
      watch.current = false;
      const reply = await this.request(eventName(stream, action, hash), handle.params);
      if (mine !== loads) return handle.rows; // a later load (a reload, a resync) wins
      watch.current = true;
      Object.assign(handle, { count: reply.count, page: reply.page, limit: reply.limit });
      changed(reply.rows);
      return handle.rows;
    };
    const target = () => {
      const { filters = {}, query } = handle.params;
      return search ? { filters, query: query ?? "" } : { filters };
    };
    const watch = {
      stream,
      hash,
      current: false,
      onError,
      load,
      listeners: [
        this.on(eventName(stream, "retrieve", hash), (data, frame) => isPush(frame) && upsert(data)),
        this.on(eventName(stream, "delete", hash), (data, frame) => isPush(frame) && remove(data)),
      ],
      get unsubscribe() {
        return [eventName(stream, "unsubscribe", hash), target()];
      },
    };
    handle.reload = (more = {}) => {
      Object.assign(handle.params, more);
      return load();
    };
    handle.stop = () => this._stopWatch(watch);
    this._startWatch(watch);
    return handle;
  }

  // -- internals ----------------------------------------------------------------------

  _newHash() {
    this._hashes += 1;
    return `w${this._hashes}`;
  }

  _startWatch(watch) {
    this._watches.add(watch);
    if (this._ready) this._loadWatch(watch);
  }

  _loadWatch(watch) {
    watch.load().catch((error) => {
      if (["disconnected", "closed"].includes(error.code)) return; // reloaded on reconnect
      if (watch.onError) watch.onError(error);
      else this._emit("error", error);
    });
  }

  _stopWatch(watch) {
    if (!this._watches.delete(watch)) return;
    watch.listeners.forEach((off) => off());
    const unsubscribe = watch.unsubscribe;
    if (this._ready) this._unsubscribe(unsubscribe).catch(() => {});
    else if (this._session) this._unwatched.push(unsubscribe); // sent if the server resumes
  }

  _subscribe(entry) {
    return this.request(entry.event, entry.data).then((data) => {
      entry.current = true;
      return data;
    });
  }

  /** Sends an unsubscribe; one cut off by a drop is sent again if the server resumes. */
  _unsubscribe([event, data]) {
    const sending = this.request(event, data);
    sending.catch((error) => {
      if (error.code === "disconnected" && this._session) this._unwatched.push([event, data]);
    });
    return sending;
  }

  /** `onSettle(frame)`, when given, runs as the reply (or failure) is received, before any other frame. */
  _call(event, data, timeout, direct, onSettle = null) {
    if (this._stopped) {
      return Promise.reject(new BindingError({ code: "closed", detail: "The client was closed." }, event));
    }
    const frame = { event, data, request_id: this._nextId++ };
    return new Promise((resolve, reject) => {
      const entry = { frame, resolve, reject, timeout, sent: false, timer: null, onSettle };
      this._pending.set(frame.request_id, entry);
      if (this._ready || direct) this._send(frame.request_id);
      else this._queue.push(frame.request_id);
    });
  }

  _send(id) {
    const entry = this._pending.get(id);
    entry.sent = true;
    if (entry.timeout) {
      const detail = `No reply within ${entry.timeout} ms.`;
      entry.timer = setTimeout(() => this._settle(id, { error: { code: "timeout", detail } }), entry.timeout);
    }
    this._socket.send(JSON.stringify(entry.frame));
  }

  /** Resolves the request `id` with `frame.data`, or rejects it with `frame.error`. */
  _settle(id, frame) {
    const entry = this._pending.get(id);
    if (!entry) return;
    this._pending.delete(id);
    clearTimeout(entry.timer);
    entry.onSettle?.(frame);
    if (frame.error) entry.reject(new BindingError(frame.error, frame.event ?? entry.frame.event));
    else entry.resolve(frame.data);
  }

  _rejectAll(which, error) {
    for (const [id, entry] of this._pending) if (which(entry)) this._settle(id, { error });
  }

  _open() {
    this._timer = null;
    const protocols = this.token ? [SUBPROTOCOL, `token.${this.token}`] : undefined;
    const url = this.resume ? withResume(this.url) : this.url;
    const socket = protocols ? new this._WebSocket(url, protocols) : new this._WebSocket(url);
    this._socket = socket;
    socket.onmessage = (message) => this._receive(message.data);
    socket.onclose = (event) => this._dropped(event);
    // A failed socket fires error, then close; Node 20's WebSocket fires only error.
    socket.onerror = () => this._dropped({ code: 1006, reason: "" });
  }

  _receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (isPush(frame) && Number.isInteger(frame.pos)) this._received(frame.pos);
    const entry = frame.request_id !== undefined ? this._pending.get(frame.request_id) : undefined;
    if (entry) this._settle(frame.request_id, frame);
    if (frame.error) {
      if (!entry) this._emit("error", new BindingError(frame.error, frame.event ?? null), frame);
      return;
    }
    if (typeof frame.event !== "string") return;
    if (frame.event === "connection") this._connected(frame.data);
    this._dispatch(frame);
    if (isPush(frame)) this._resync(frame.event);
  }

  /**
   * `<stream>.resync[#hash]`: the server may have missed changes of the stream, so the
   * watches of that stream with that hash (every one, without a hash) read again.
   */
  _resync(event) {
    const cut = event.indexOf("#");
    const base = cut < 0 ? event : event.slice(0, cut);
    if (!base.endsWith(RESYNC) || base.length === RESYNC.length) return;
    const stream = base.slice(0, -RESYNC.length);
    const hash = cut < 0 ? "" : event.slice(cut + 1);
    for (const watch of this._watches) {
      if (watch.stream !== stream || (hash !== "" && String(watch.hash) !== hash)) continue;
      watch.current = false; // while not ready, the reconnect reloads it
      if (this._ready) this._loadWatch(watch);
    }
  }

  /** Records the `pos` of a pushed frame (replies have none). */
  _received(pos) {
    const session = this._restoring ? this._fresh : this._session;
    if (session && pos > session.pos) session.pos = pos;
  }

  _dispatch(frame) {
    const base = frame.event.split("#")[0];
    // "resume" listeners get the lifecycle event; its reply reaches "*" only.
    if (base === "resume") return this._emit("*", frame.data, frame);
    const names = base === frame.event ? [base, "*"] : [frame.event, base, "*"];
    for (const name of names) this._emit(name, frame.data, frame);
  }

  _emit(name, ...args) {
    for (const { handler } of [...(this._listeners.get(name) ?? [])]) {
      try {
        handler(...args);
      } catch (error) {
        console.error(error); // one broken listener must not stop the others
      }
    }
  }

  _connected(data) {
    this.connection = data;
    if (this.connected) return;
    this.connected = true;
    this._attempt = 0;
    const token = data?.resume?.token;
    this._fresh = this.resume && typeof token === "string" && token ? { token, pos: 0 } : null;
    this._restoring = true;
    this._emit("open", data);
    this._restore();
  }

  /**
   * After a handshake, in this order: re-authorize (when authorize() was used), resume
   * (when the client holds a session), send what was queued, then re-watch and
   * re-subscribe what the server does not hold.
   *
   * authorize comes before resume: the server resumes only for a connection of the same
   * user as the old one, so the new connection must already be that user. The server
   * accepts resume as long as the connection has no subscription of its own, which
   * authorize does not make; queued requests (a retrieve subscribes) wait for both.
   */
  async _restore() {
    const socket = this._socket;
    const again = this._everConnected;
    this._everConnected = true;
    if (this._auth !== undefined) {
      const data = this._auth === null ? {} : { token: this._auth };
      try {
        this.connection = await this._call("authorize", data, this.timeout, true);
      } catch (error) {
        if (socket !== this._socket) return;
        this._emit("error", error);
      }
    }
    if (socket !== this._socket) return;
    const previous = this._session;
    let outcome = null;
    if (previous) {
      // Settled as the reply is received, so that no frame after it is counted on the
      // wrong session, and a drop right after it finds the client's state up to date.
      const settle = (frame) => {
        if (socket !== this._socket) return; // cut off: the next socket resumes `previous`
        const { resumed, token, pos } = frame.data ?? {};
        if (!frame.error && resumed === true && typeof token === "string") {
          outcome = { resumed: true };
          this._settleSession({ token, pos: Number.isInteger(pos) ? pos : previous.pos });
        } else {
          outcome = { resumed: false };
          if (frame.error) outcome.error = new BindingError(frame.error, "resume");
          this._settleSession(null);
        }
      };
      const data = { token: previous.token, pos: previous.pos };
      await this._call("resume", data, this.timeout, true, settle).catch(() => {});
      if (socket !== this._socket) return;
    } else {
      this._settleSession(null);
    }
    if (outcome) this._emit("resume", outcome);
    this._ready = true;
    for (const id of this._queue.splice(0)) this._send(id);
    const owed = this._unwatched.splice(0); // a fresh server has nothing to unsubscribe
    if (outcome?.resumed) for (const unsubscribe of owed) this._unsubscribe(unsubscribe).catch(() => {});
    for (const watch of this._watches) if (!watch.current) this._loadWatch(watch);
    for (const entry of this._subscriptions.values()) {
      if (!entry.queued && !entry.current) this._subscribe(entry).catch((error) => this._emit("error", error));
      entry.queued = false;
    }
    if (again) this._emit("reconnect", this.connection);
    this._settleConnect(null);
  }

  /**
   * The server resumed `session` (the old connection's token and pos), or, with null, this
   * socket starts afresh: the server holds no watch or subscription of this client.
   */
  _settleSession(session) {
    this._restoring = false;
    if (session) {
      this._session = session;
    } else {
      this._session = this._fresh;
      for (const watch of this._watches) watch.current = false;
      for (const entry of this._subscriptions.values()) entry.current = false;
    }
    this._fresh = null;
  }

  _settleConnect(error) {
    const waiting = this._waiting;
    this._waiting = null;
    if (waiting && error) waiting.reject(error);
    else if (waiting) waiting.resolve(this.connection);
  }

  /** Forgets the socket (and closes it if it is still open): it sends no more events. */
  _detach() {
    const socket = this._socket;
    if (socket) {
      socket.onmessage = socket.onclose = socket.onerror = null;
      if (socket.readyState <= 1) socket.close(1000); // CONNECTING or OPEN
    }
    this._socket = null;
    this.connected = false;
    this._ready = false;
    return socket;
  }

  /** The socket closed (not by close()): reject what was sent, retry after a delay. */
  _dropped(event) {
    this._detach();
    const lost = { code: "disconnected", detail: "The connection was lost." };
    const delay = this._backoff ? this._nextDelay() : null;
    this._rejectAll((entry) => entry.sent || delay === null, lost);
    if (delay !== null) {
      this._timer = setTimeout(() => this._open(), delay);
    } else {
      this._queue = [];
      this._settleConnect(new BindingError(lost));
    }
    this._emit("close", { code: event?.code, reason: event?.reason ?? "", reconnectIn: delay });
  }

  /** initial × factor^attempt, capped at max, then ±20% of jitter (never above max). */
  _nextDelay() {
    const { initial, max, factor } = this._backoff;
    const base = Math.min(max, initial * factor ** this._attempt);
    this._attempt += 1;
    return Math.min(max, Math.round(base * (0.8 + 0.4 * Math.random())));
  }
}

export default BindingClient;

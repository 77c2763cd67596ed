/**
 * Type declarations of the channels-binding JavaScript client (client.js).
 * Written by hand next to the module they describe; see docs/javascript.rst.
 *
 * Every type takes the rows of your streams as a map, so that a typed client knows
 * what each stream's events carry:
 *
 *     type Streams = { "shop.Product": Product; "auth.User": User };
 *     const client = new BindingClient<Streams>("/ws/");
 *     const pen = await client.retrieve("shop.Product", 7); // Product
 *
 * Without it, a row is any object with an `id`.
 */

// -- values -------------------------------------------------------------------------

/** A primary key (or `lookup_field` value): the server sends what the serializer does. */
export type Id = string | number;

/** A client's tag after `#` in an event; a number is sent as its text. */
export type Hash = string | number;

/** A serialized object. Live lists and objects match rows by `id`. */
export interface Row {
  id: Id;
  [field: string]: unknown;
}

/** The rows of each stream, by stream name ("shop.Product"); each row has an `id`. */
export type StreamTypes = Record<string, { id: Id }>;

/**
 * Custom events (`@bind`) and any other event sent with `request()`, by full event
 * name without the hash ("shop.Product.stats"): what `data` is sent, what the reply
 * carries.
 */
export type EventTypes = Record<string, { data: object; reply: unknown }>;

/** A filter value: one scalar, or a list for `__in` and `__range` filters. */
export type FilterValue = string | number | boolean | null;

/** Filter names (as the binding declares them) to values; all must match. */
export type Filters = Record<string, FilterValue | FilterValue[]>;

/** The parameters of `list` (and, with `query`, of `search`). */
export interface ListParams {
  /** 1-based; a positive integer or a string of digits. */
  page?: number | string;
  /** Rows per page; lowered to the binding's maximum. */
  limit?: number | string;
  /** A field name, "-" before it for descending; several as "-price,name" or a list. */
  ordering?: string | string[] | null;
  filters?: Filters | null;
}

/** `search` parameters: those of `list`, plus the text to look for. */
export interface SearchParams extends ListParams {
  query?: string | null;
}

/** The reply of `list` and `search`. */
export interface Page<T = Row> {
  page: number;
  limit: number;
  /** Rows over all pages. */
  count: number;
  rows: T[];
}

/** What `create`, `update` and `save` send: the serializer's fields, any subset. */
export type Fields<T> = { [K in keyof T]?: T[K] } & Record<string, unknown>;

/** The reply of `save` and `delete`. */
export interface Success {
  success: true;
  id: Id;
}

/** What `retrieve` and `delete` address: a key, `{id}`, or null (the hash is the key). */
export type Key = Id | { id: Id } | null;

/** What `subscribe` and `unsubscribe` address: one object, or a collection. */
export type Target = Id | { id: Id } | { filters?: Filters | null; query?: string | null };

/** `unsubscribe` also takes `{all: true}`: every subscription of the stream. */
export type UnsubscribeTarget = Target | { all: true };

/** Options of the event shortcuts: the hash to add to the event. */
export interface HashOption {
  hash?: Hash;
}

// -- frames -------------------------------------------------------------------------

/** The data of the `connection` frame, of `authorize` replies, of `connect()`. */
export interface ConnectionData {
  client_id: string;
  /** The user's primary key, null for an anonymous connection. */
  user_id: Id | null;
  authenticated: boolean;
  /** The named channels the connection has joined. */
  channels: string[];
  /** Only on a connection opened with `resume=1` (the client's default). */
  resume?: { token: string; window: number };
}

/** Who relayed a notification (client relays, `CLIENT_NOTIFICATIONS`). */
export interface Sender {
  user_id: Id;
  client_id: string;
}

/** A frame the client sends. Request ids are integers counted from 1 per client. */
export interface RequestFrame<D extends object = object> {
  event: string;
  data: D;
  request_id: number;
}

/** The reply to a request of this client: its event (hash included) and request_id. */
export interface ReplyFrame<D = unknown> {
  event: string;
  data: D;
  request_id: number;
}

/** A frame the server sends unasked: live data, notifications, `connection`. */
export interface PushFrame<D = unknown> {
  event: string;
  data: D;
  request_id?: undefined;
  /** The frame's number, on a connection opened with `resume=1`. */
  pos?: number;
  /** On a notification relayed by another client. */
  sender?: Sender;
}

/** What listeners of an event receive: its replies as well as its pushes. */
export type Frame<D = unknown> = ReplyFrame<D> | PushFrame<D>;

/** The codes of the server's error frames. */
export type ServerErrorCode =
  | "invalid"
  | "parse_error"
  | "not_authenticated"
  | "permission_denied"
  | "not_found"
  | "unknown_event"
  | "method_not_allowed"
  | "too_large"
  | "throttled"
  | "server_error";

/** The codes of the client's own failures (status 0). */
export type ClientErrorCode = "timeout" | "disconnected" | "closed";

/** A message, or DRF's validation errors: field names to messages (nested for nested serializers). */
export type ErrorDetail = string | { [field: string]: string[] | ErrorDetail | ErrorDetail[] };

/** The `error` of an error frame. */
export interface ErrorBody {
  status: number;
  /** One of ServerErrorCode, or the default_code of an APIException of your own. */
  code: ServerErrorCode | (string & {});
  detail: ErrorDetail;
}

/** An error frame; `event` is null for a frame too broken to read. */
export interface ErrorFrame {
  event: string | null;
  error: ErrorBody;
  request_id?: unknown;
}

/** `<stream>.resync[#hash]`: what the collection subscription watches; read it again. */
export interface ResyncData {
  filters: Filters;
  query: string | null;
}

/** The data of a `<stream>.delete[#hash]` push (and reply). */
export interface Deleted {
  id: Id;
}

/** The data of the reply to `resume` (the client sends it after a reconnect). */
export interface ResumeReply {
  resumed: boolean;
  token?: string;
  pos?: number;
}

/** The data of the "resume" lifecycle event. */
export interface ResumeOutcome {
  resumed: boolean;
  /** When the resume failed: the error frame's, or a "timeout". */
  error?: BindingError;
}

/** The data of the "close" lifecycle event. */
export interface CloseInfo {
  code: number | undefined;
  reason: string;
  /** ms before the next attempt; null when none will be made. */
  reconnectIn: number | null;
}

// -- errors -------------------------------------------------------------------------

/**
 * An error frame from the server (`status`, `code`, `detail` as sent), or a failure of
 * the client itself, with `status` 0 and `code` "timeout", "disconnected" or "closed".
 */
export declare class BindingError extends Error {
  constructor(
    error: { status?: number; code: string; detail?: ErrorDetail },
    event?: string | null,
  );
  name: "BindingError";
  /** The HTTP-like status, 0 for the client's own failures. */
  status: number;
  code: ServerErrorCode | ClientErrorCode | (string & {});
  detail: ErrorDetail;
  /** The event of the request, or of the error frame. */
  event: string | null;
}

// -- options ------------------------------------------------------------------------

/** What the client needs of a WebSocket; the browser's and Node's WebSocket have it. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: any) => unknown) | null;
  onclose: ((event: any) => unknown) | null;
  onerror: ((event: any) => unknown) | null;
}

/** A class like `WebSocket`: `new WebSocket(url)` or `new WebSocket(url, protocols)`. */
export type WebSocketClass = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The back-off between reconnection attempts, in ms. */
export interface ReconnectOptions {
  initial?: number;
  max?: number;
  factor?: number;
}

export interface ClientOptions {
  /** Authenticates the handshake (subprotocol "token.<token>"). */
  token?: string | null;
  /** `globalThis.WebSocket` by default; tests pass a fake one. */
  WebSocket?: WebSocketClass;
  /** 500, 10000, 2 by default; false never to reconnect. */
  reconnect?: ReconnectOptions | false;
  /** ms to wait for a reply (10000); 0 waits for ever. */
  timeout?: number;
  /** Numbered pushes (`resume=1`) and resuming after a reconnect (true). */
  resume?: boolean;
}

export interface RequestOptions {
  /** Overrides the client's timeout, in ms. */
  timeout?: number;
}

export interface WatchOptions<V> {
  /** A new one ("w1", "w2", ...) by default, so that the watch's pushes are its own. */
  hash?: Hash;
  onChange?: (value: V) => void;
  /** A failed read; without it, the client's "error" listeners get it. */
  onError?: (error: BindingError) => void;
}

export interface WatchListOptions<T> extends WatchOptions<T[]> {
  /** Search with `params.query` instead of listing. */
  search?: boolean;
  /** Keeps `rows` sorted, as for Array.prototype.sort. */
  compare?: (a: T, b: T) => number;
}

// -- live values --------------------------------------------------------------------

/** The handle of `watchObject()`. */
export interface ObjectWatch<T> {
  /** undefined until loaded, then the object, then null once deleted. */
  readonly value: T | null | undefined;
  readonly hash: Hash;
  /** Stops listening and unsubscribes. */
  stop(): void;
  /** Retrieves again. */
  reload(): Promise<T | null | undefined>;
}

/** The handle of `watchList()`. */
export interface ListWatch<T> {
  /** A new array after each change. */
  readonly rows: T[];
  readonly count: number;
  readonly page: number | string;
  readonly limit: number | string | undefined;
  readonly hash: Hash;
  /** The parameters of the next read; `reload(more)` merges into them. */
  readonly params: SearchParams;
  stop(): void;
  reload(more?: SearchParams): Promise<T[]>;
}

// -- listeners ----------------------------------------------------------------------

/** The name of a stream's event, with or without a hash. */
type StreamEvent<K extends string, A extends string> = `${K}.${A}` | `${K}.${A}#${string}`;

/** An event with or without a hash. */
type Hashed<N extends string> = N | `${N}#${string}`;

/** The names that have listeners of their own type (those of typed streams included). */
type Listed<S> =
  | "open"
  | "reconnect"
  | "resume"
  | "close"
  | "error"
  | "*"
  | Hashed<"connection" | "pong">
  | (string extends keyof S
      ? never
      : StreamEvent<keyof S & string, "retrieve" | "delete" | "resync" | "list" | "search">);

/** `N`, unless it is one of `Names`: the fallback signatures then do not apply. */
type Other<N extends string, Names> = N extends Names ? never : N;

/** Removes the listener. */
export type RemoveListener = () => boolean;

// -- the client ---------------------------------------------------------------------

/** A client of one channels-binding websocket endpoint. */
export declare class BindingClient<
  S extends StreamTypes = Record<string, Row>,
  E extends EventTypes = {},
> {
  /**
   * @param url websocket address; "/ws/" is resolved against the page (ws: or wss:);
   *   outside a browser, an absolute ws:// or wss:// address
   */
  constructor(url: string, options?: ClientOptions);

  /** The absolute address given (without the `resume=1` the socket's URL gets). */
  readonly url: string;
  token: string | null;
  timeout: number;
  readonly resume: boolean;
  /** The data of the last `connection` frame. */
  connection: ConnectionData | null;
  /** true from the `connection` frame until the socket closes. */
  readonly connected: boolean;

  /** Opens the socket and keeps reopening it after a drop, until close(). */
  connect(): Promise<ConnectionData>;
  /** Closes for good: waiting requests are rejected with "closed". */
  close(): void;

  /** Sends `{event, data, request_id}`; resolves with the reply's `data`. */
  request<K extends keyof E & string>(
    event: Hashed<K>,
    data: E[K]["data"],
    options?: RequestOptions,
  ): Promise<E[K]["reply"]>;
  /** Any other event; `request<Reply>(...)` types the reply. */
  request<R = unknown, N extends string = string>(
    event: Other<N, Hashed<keyof E & string>>,
    data?: object,
    options?: RequestOptions,
  ): Promise<R>;

  /** Retrieves (and watches) one object; with `id` null, the hash is the key. */
  retrieve<K extends keyof S & string>(
    stream: K,
    id: Key,
    options?: HashOption,
  ): Promise<S[K]>;
  list<K extends keyof S & string>(
    stream: K,
    params?: ListParams,
    options?: HashOption,
  ): Promise<Page<S[K]>>;
  search<K extends keyof S & string>(
    stream: K,
    query: string,
    params?: ListParams,
    options?: HashOption,
  ): Promise<Page<S[K]>>;
  create<K extends keyof S & string>(
    stream: K,
    fields: Fields<S[K]>,
    options?: HashOption,
  ): Promise<S[K]>;
  /** A partial update. */
  update<K extends keyof S & string>(
    stream: K,
    id: Id,
    fields?: Fields<S[K]>,
    options?: HashOption,
  ): Promise<S[K]>;
  /** Updates when `fields.id` names an object, else creates. */
  save<K extends keyof S & string>(
    stream: K,
    fields: Fields<S[K]>,
    options?: HashOption,
  ): Promise<Success>;
  delete<K extends keyof S & string>(
    stream: K,
    id: Key,
    options?: HashOption,
  ): Promise<Success>;
  /** Watches without reading; made again after reconnects, until unsubscribe(). */
  subscribe<K extends keyof S & string>(
    stream: K,
    target: Target,
    options?: HashOption,
  ): Promise<{ subscribed: true }>;
  unsubscribe<K extends keyof S & string>(
    stream: K,
    target: UnsubscribeTarget,
    options?: HashOption,
  ): Promise<{ subscribed: false }>;
  /** Changes the connection's user (null: anonymous), remembered for reconnects. */
  authorize(token: string | null): Promise<ConnectionData>;
  /** The round trip of a ping, in ms. */
  ping(): Promise<number>;

  /** Lifecycle: the handshake is done (each time the socket opens). */
  on(name: "open", handler: (data: ConnectionData) => void): RemoveListener;
  /** Lifecycle: reconnected, re-authorized, resumed, watching again. */
  on(name: "reconnect", handler: (data: ConnectionData) => void): RemoveListener;
  /** Lifecycle: whether the server kept the subscriptions over a reconnect. */
  on(name: "resume", handler: (outcome: ResumeOutcome) => void): RemoveListener;
  on(name: "close", handler: (info: CloseInfo) => void): RemoveListener;
  /** An error no promise receives, with its frame when there is one. */
  on(name: "error", handler: (error: BindingError, frame?: ErrorFrame) => void): RemoveListener;
  on(
    name: "connection" | `connection#${string}`,
    handler: (data: ConnectionData, frame: Frame<ConnectionData>) => void,
  ): RemoveListener;
  on(
    name: "pong" | `pong#${string}`,
    handler: (data: Record<string, never>, frame: Frame<Record<string, never>>) => void,
  ): RemoveListener;
  /** Every frame. */
  on(name: "*", handler: (data: unknown, frame: Frame) => void): RemoveListener;
  /** A stream's objects: pushes of watched rows, and the replies of retrieve. */
  on<K extends keyof S & string>(
    name: StreamEvent<K, "retrieve">,
    handler: (row: S[K], frame: Frame<S[K]>) => void,
  ): RemoveListener;
  on<K extends keyof S & string>(
    name: StreamEvent<K, "delete">,
    handler: (data: Deleted, frame: Frame<Deleted>) => void,
  ): RemoveListener;
  on<K extends keyof S & string>(
    name: StreamEvent<K, "resync">,
    handler: (data: ResyncData, frame: PushFrame<ResyncData>) => void,
  ): RemoveListener;
  on<K extends keyof S & string>(
    name: StreamEvent<K, "list" | "search">,
    handler: (page: Page<S[K]>, frame: Frame<Page<S[K]>>) => void,
  ): RemoveListener;
  /** Notifications, custom events' replies, anything else. */
  on<D = any, N extends string = string>(
    name: Other<N, Listed<S>>,
    handler: (data: D, frame: Frame<D>) => void,
  ): RemoveListener;

  /** Keeps `value` equal to the object, from its pushes; reloaded after reconnects. */
  watchObject<K extends keyof S & string>(
    stream: K,
    id: Id | null,
    options?: WatchOptions<S[K] | null>,
  ): ObjectWatch<S[K]>;
  /** Keeps `rows` equal to a live list: upserts on retrieve pushes, removes on delete. */
  watchList<K extends keyof S & string>(
    stream: K,
    params?: SearchParams,
    options?: WatchListOptions<S[K]>,
  ): ListWatch<S[K]>;
}

export default BindingClient;

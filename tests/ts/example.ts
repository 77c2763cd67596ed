// A typed front end of the demo's shop, checked by `tsc -p tests/ts` (make test-js).
// It is never run: it shows that client.d.ts describes the client as documented,
// imported by its package name, and `@ts-expect-error` lines show that misuse is
// caught (an unused one fails the check, so types that accept anything fail too).
import BindingClient, {
  BindingError,
  type ConnectionData,
  type Frame,
  type Id,
  type Page,
  type Row,
  type WebSocketClass,
} from "channels-binding";
import { BindingClient as Named } from "channels-binding/client.js";

/** `true` only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function same<A, B>(check: Equal<A, B>): void {
  void check;
}

interface Product {
  id: number;
  name: string;
  price: string;
  in_stock: boolean;
  category: number | null;
}

interface Category {
  id: number;
  name: string;
}

type Streams = { "shop.Product": Product; "shop.Category": Category };
type Events = {
  "shop.Product.stats": { data: { in_stock?: boolean }; reply: { count: number; total: string } };
};

export async function shop(): Promise<void> {
  const client = new BindingClient<Streams, Events>("/ws/", {
    token: "9944b091",
    reconnect: { initial: 250, max: 5000 },
    timeout: 5000,
    resume: true,
  });
  same<typeof client, Named<Streams, Events>>(true);
  const connection = await client.connect();
  same<typeof connection, ConnectionData>(true);
  const user: Id | null = connection.user_id;
  const window: number | undefined = connection.resume?.window;
  void [user, window];

  // replies
  const pen = await client.retrieve("shop.Product", 7);
  same<typeof pen, Product>(true);
  const byHash = await client.retrieve("shop.Product", null, { hash: 42 });
  same<typeof byHash, Product>(true);
  const page = await client.list("shop.Product", {
    page: 2,
    limit: 20,
    ordering: ["-price", "name"],
    filters: { in_stock: true, category__in: [1, 2], price__lt: "9.99" },
  });
  same<typeof page, Page<Product>>(true);
  const names: string[] = page.rows.map((row) => row.name);
  const found = await client.search("shop.Product", "pen", { limit: 5 }, { hash: "box" });
  const total: number = found.count + page.count;
  const ink = await client.create("shop.Product", { name: "Ink", price: "3.00" });
  same<typeof ink, Product>(true);
  const cheaper = await client.update("shop.Product", ink.id, { price: "2.50" });
  same<typeof cheaper, Product>(true);
  const saved = await client.save("shop.Product", { id: 7, in_stock: false });
  const deleted = await client.delete("shop.Product", saved.id);
  const success: true = deleted.success;
  const on = await client.subscribe("shop.Product", { filters: { in_stock: true } }, { hash: "stock" });
  const off = await client.unsubscribe("shop.Product", { all: true });
  const subscribed: [true, false] = [on.subscribed, off.subscribed];
  await client.subscribe("shop.Category", 3);
  const stats = await client.request("shop.Product.stats#home", { in_stock: true });
  same<typeof stats, { count: number; total: string }>(true);
  const anything = await client.request<{ ok: boolean }>("shop.Product.export", {}, { timeout: 0 });
  const ok: boolean = anything.ok;
  const me = await client.authorize(null);
  const ms: number = await client.ping();
  void [names, total, success, subscribed, ok, me, ms];

  // @ts-expect-error: not a field of Product
  await client.create("shop.Product", { name: 5 });
  // @ts-expect-error: not a stream of Streams
  await client.retrieve("shop.Order", 1);
  // @ts-expect-error: filters take scalars or lists of them
  await client.list("shop.Product", { filters: { in_stock: { nested: true } } });
  // @ts-expect-error: the data of a typed custom event
  await client.request("shop.Product.stats", { in_stock: "yes" });
  // @ts-expect-error: the reply of a typed custom event
  const wrong: string = await client.request("shop.Product.stats", {});
  void wrong;

  // errors
  try {
    await client.create("shop.Product", { name: "Pen", price: "-1" });
  } catch (error) {
    if (error instanceof BindingError && error.code === "invalid" && typeof error.detail === "object") {
      const messages = error.detail.price;
      const status: number = error.status;
      const event: string | null = error.event;
      void [messages, status, event];
    }
  }
  const own = new BindingError({ code: "timeout", detail: "No reply within 10 ms." }, "ping");
  const message: string = own.message;
  void message;

  // listeners: typed by the stream in the event's name, with or without a hash
  const stop = client.on("shop.Product.retrieve#stock", (row, frame) => {
    same<typeof row, Product>(true);
    if (frame.request_id === undefined) {
      const pos: number | undefined = frame.pos;
      void pos;
    } else {
      const id: number = frame.request_id;
      void id;
    }
  });
  const removed: boolean = stop();
  client.on("shop.Category.delete", ({ id }) => void id);
  client.on("shop.Product.resync#stock", (data, frame) => {
    const query: string | null = data.query;
    void [query, data.filters, frame.pos];
  });
  client.on("shop.Product.list#side", (reply) => same<typeof reply, Page<Product>>(true));
  client.on("notify", (data: { message: string }, frame: Frame<{ message: string }>) => {
    void [data.message, frame.event];
  });
  client.on("open", (data) => same<typeof data, ConnectionData>(true));
  client.on("reconnect", (data) => void data.client_id);
  client.on("resume", ({ resumed, error }) => void [resumed, error?.code]);
  client.on("close", ({ code, reason, reconnectIn }) => {
    if (code === 4401) client.close();
    void [reason, reconnectIn === null];
  });
  client.on("error", (error, frame) => void [error.status, frame?.error.code]);
  client.on("*", (data, frame) => void [data, frame.event]);
  // @ts-expect-error: a retrieve push carries a Product
  client.on("shop.Product.retrieve", (row: { title: string }) => void row);
  client.on("shop.Product.retrieve", (row: Category) => void row); // a Product is a Category too
  void removed;

  // live values
  const one = client.watchObject("shop.Product", 7, {
    onChange: (value) => same<typeof value, Product | null>(true),
    onError: (error) => void error.code,
  });
  same<typeof one.value, Product | null | undefined>(true);
  await one.reload();
  one.stop();
  const list = client.watchList(
    "shop.Product",
    { query: "", filters: { in_stock: true } },
    {
      hash: "results",
      search: true,
      compare: (a, b) => Number(a.price) - Number(b.price),
      onChange: (rows) => same<typeof rows, Product[]>(true),
    },
  );
  const rows: Product[] = await list.reload({ query: "pen", page: 1 });
  void [rows, list.count, list.hash, list.params.query];
  list.stop();
  client.close();
}

// An untyped client: rows are objects with an id.
export async function untyped(): Promise<Row[]> {
  const client = new BindingClient("ws://127.0.0.1:8000/ws/", { reconnect: false });
  const row = await client.retrieve("anything.Model", "a-slug");
  same<typeof row, Row>(true);
  client.on("anything.Model.retrieve#x", (pushed) => same<typeof pushed, Row>(true));
  client.on("chat.message", (data: { text: string }, frame) => void [data.text, frame.event]);
  await client.request("anything.Model.stats", { day: 1 });
  return (await client.list("anything.Model")).rows;
}

// The browser's WebSocket, and a test double, fit the WebSocket option.
class FakeSocket {
  readyState = 0;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}
  send(text: string): void {
    void text;
  }
  close(): void {}
}
const classes: WebSocketClass[] = [WebSocket, FakeSocket];
void classes;
// @ts-expect-error: a class without send() is not a WebSocket
new BindingClient("ws://x/", { WebSocket: class {} });

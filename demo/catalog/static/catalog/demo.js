// What every page of the demo shares: one BindingClient (one websocket), the
// connection pill in the top bar, and toasts for notifications. Each page imports
// `client` from here and adds its own widgets.
import BindingClient, { BindingError } from "../channels_binding/client.js";

export { BindingError };

const dataset = document.body.dataset;

/** The signed-in user, as the page was rendered. */
export const me = {
  authenticated: dataset.authenticated === "true",
  id: Number(dataset.userId) || null,
  username: dataset.username || "",
};

/** Page options: a page with its own notifications panel turns the toasts off. */
export const options = { notificationToasts: true };

/** user pk -> username, for the names of chat senders and the user picker. */
export const users = new Map(
  JSON.parse(document.getElementById("demo-users").textContent || "[]").map((u) => [u.id, u.username]),
);

// Signed-in users join the chat room's channel at connect (`?channel=lobby`);
// anonymous connections may join none, so they do not ask.
export const client = new BindingClient(me.authenticated ? "/ws/?channel=lobby" : "/ws/");

/** `el("li", {className: "row"}, "text", child)`: a small DOM builder. */
export function el(tag, { dataset = {}, ...props } = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  Object.assign(node.dataset, dataset);
  node.append(...children.filter((child) => child != null && child !== false));
  return node;
}

/** Who relayed a frame: relayed frames carry `sender`, server pushes do not. */
export function senderName(frame) {
  const id = frame?.sender?.user_id;
  if (id == null) return null;
  return users.get(id) ?? `user #${id}`;
}

/** A short-lived message in the bottom-right corner. */
export function toast(text, { title = null, kind = "info" } = {}) {
  const box = el("div", { className: `toast ${kind}` }, title && el("strong", {}, title), el("span", {}, text));
  document.getElementById("toasts").append(box);
  setTimeout(() => box.classList.add("gone"), 5000);
  setTimeout(() => box.remove(), 5600);
}

/** The message of an error, for people: field errors become "field: message". */
export function describe(error) {
  if (!(error instanceof BindingError)) return String(error);
  if (error.detail && typeof error.detail === "object") {
    return Object.entries(error.detail)
      .map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`)
      .join("; ");
  }
  return error.detail || error.code;
}

// -- the connection pill ---------------------------------------------------------

const pill = document.getElementById("status");

function setStatus(state, text) {
  if (!pill) return;
  pill.dataset.state = state;
  pill.textContent = text;
}

client.on("open", (data) => {
  const channels = data.channels?.length ? ` · #${data.channels.join(" #")}` : "";
  setStatus("online", `live${channels}`);
});
client.on("close", ({ reconnectIn }) => {
  setStatus("offline", reconnectIn == null ? "closed" : `offline, retrying in ${Math.ceil(reconnectIn / 1000)} s`);
});
pill?.addEventListener("click", async () => {
  try {
    const ms = await client.ping();
    toast(`pong in ${ms} ms`, { title: "ping" });
  } catch (error) {
    toast(describe(error), { kind: "error" });
  }
});

// -- notifications: server code (notify.*) and relays from other users -------------

client.on("notify", (data, frame) => {
  if (!options.notificationToasts) return;
  const from = senderName(frame);
  const text = typeof data?.message === "string" ? data.message : JSON.stringify(data);
  toast(text, { title: from ? `From ${from}` : "Notification" });
});

// Errors that no request awaits (a watch that failed to load, for instance).
client.on("error", (error) => toast(describe(error), { kind: "error" }));

client.connect();

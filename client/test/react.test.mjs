// crm-bridge-client/react (client/react.js) in jsdom with Testing Library,
// over the real client module and a stand-in socket (fake-socket.mjs): what
// the provider and hooks send, and what they show for what the bridge sends.
// `node --test client/test/*.test.mjs`; tests/react_browser.rs runs the hooks
// in Chromium against the real bridge.
import "./dom.mjs";
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { StrictMode, createElement as h } from "react";
import { act, cleanup, render, waitFor } from "@testing-library/react";
import { withRecovery } from "../recovery.js";
import { CrmBridgeProvider, useConnection, useNotifications, useRoom, useSubscription } from "../react.js";
import { fakeSocket } from "./fake-socket.mjs";

afterEach(cleanup);

const CONTACT = { resource: "contact", id: "contact_123", events: ["delete", "update"] };
const subscribed = (request) => ({ ok: true, subscription: { events: [], ...request }, cursor: "1:c0.5" });

/** An `io` that makes a stand-in socket per call (StrictMode makes two), wrapped by the module. */
function bridge(replies = (event, request) => (event === "subscribe" ? subscribed(request) : { ok: true })) {
  const sockets = [];
  const io = withRecovery((url, options) => {
    const socket = fakeSocket(replies);
    socket.options = options;
    socket.auth = options.auth;
    sockets.push(socket);
    return socket;
  });
  /** The one socket that connected. */
  const live = () => {
    const connected = sockets.filter((socket) => socket.connects > 0);
    assert.equal(connected.length, 1, "one socket connects");
    return connected[0];
  };
  return { io, sockets, live };
}

async function mount(io, children, { strict = false, token = "t1" } = {}) {
  const tree = (token) => {
    const provider = h(CrmBridgeProvider, { url: "http://bridge", token, io }, children);
    return strict ? h(StrictMode, null, provider) : provider;
  };
  let view;
  await act(async () => void (view = render(tree(token))));
  return { ...view, rerenderWith: (token) => act(async () => view.rerender(tree(token))) };
}

/** Fires a server event inside act, so React renders what it changes. */
const fire = (socket, event, data) => act(async () => socket.fire(event, data));

/** The bridge accepting the connection: socket.io's `connect`, then the bridge's greeting. */
async function greet(socket) {
  await fire(socket, "connect");
  await fire(socket, "connected", { sessionId: "s1", userId: "user_alice", notificationsCursor: "1:n0.0" });
  return socket;
}

function Contact({ request = CONTACT, seen }) {
  const { status } = useSubscription({ ...request }, (name, data) => seen?.push([name, data.id ?? data.dealId]));
  return h("p", { "data-testid": "status" }, status);
}

test("components subscribing to the same resource share one subscription until the last unmounts", async () => {
  const { io, live } = bridge();
  const first = [];
  const second = [];
  const view = await mount(io, [h(Contact, { key: 1, seen: first }), h(Contact, { key: 2, seen: second })]);
  const socket = await greet(live());
  assert.deepEqual(socket.requests("subscribe"), [CONTACT]);
  assert.deepEqual(view.getAllByTestId("status").map((p) => p.textContent), ["subscribed", "subscribed"]);

  await fire(socket, "resource-update", { resource: "contact", id: "contact_123", action: "update", data: {}, position: "c.0.5" });
  await fire(socket, "resource-update", { resource: "contact", id: "contact_999", action: "update", data: {}, position: "c.0.6" });
  await fire(socket, "resource-update", { resource: "deal", id: "contact_123", action: "update", data: {}, position: "d.0.1" });
  assert.deepEqual(first, [["resource-update", "contact_123"]]);
  assert.deepEqual(second, first);

  await act(async () => view.rerender(h(CrmBridgeProvider, { url: "http://bridge", token: "t1", io }, [h(Contact, { key: 1, seen: first })])));
  assert.deepEqual(socket.requests("unsubscribe"), [], "one holder is left");
  await act(async () => view.rerender(h(CrmBridgeProvider, { url: "http://bridge", token: "t1", io }, [])));
  assert.deepEqual(socket.requests("unsubscribe"), [{ resource: "contact", id: "contact_123" }]);
  assert.deepEqual(socket.requests("subscribe"), [CONTACT], "and nothing more was subscribed");
});

test("StrictMode's double mount makes one connection and one subscription, and unsubscribes nothing", async () => {
  const { io, sockets, live } = bridge();
  const view = await mount(io, [h(Contact, { key: 1 }), h(Contact, { key: 2 })], { strict: true });
  const socket = await greet(live());
  assert.equal(sockets.length, 2, "StrictMode made a socket twice");
  assert.equal(sockets.find((s) => s !== socket).disconnects, 1, "the first was closed unconnected");
  assert.deepEqual(socket.requests("subscribe"), [CONTACT]);
  assert.deepEqual(socket.requests("unsubscribe"), []);
  view.unmount();
  assert.equal(socket.disconnects, 1, "the provider closes its socket on unmount");
});

test("unmounting unsubscribes, and a new request is a new subscription", async () => {
  const { io, live } = bridge();
  const view = await mount(io, h(Contact));
  const socket = await greet(live());
  await act(async () => view.rerender(h(CrmBridgeProvider, { url: "http://bridge", token: "t1", io }, h(Contact, { request: { resource: "deal", id: "deal_1" } }))));
  assert.deepEqual(socket.requests("subscribe"), [CONTACT, { resource: "deal", id: "deal_1" }]);
  assert.deepEqual(socket.requests("unsubscribe"), [{ resource: "contact", id: "contact_123" }]);
  await act(async () => view.rerender(h(CrmBridgeProvider, { url: "http://bridge", token: "t1", io }, null)));
  assert.deepEqual(socket.requests("unsubscribe").at(-1), { resource: "deal", id: "deal_1" });
});

test("components asking for different events of one resource share a subscription of all, each given its own", async () => {
  const { io, live } = bridge();
  const updates = [];
  const deletes = [];
  const pipeline = { resource: "deal", filter: { pipelineId: "p1" } };
  await mount(io, [
    h(Contact, { key: 1, request: { ...pipeline, events: ["stage-change"] }, seen: updates }),
    h(Contact, { key: 2, request: { ...pipeline, events: ["delete"] }, seen: deletes }),
  ]);
  const socket = await greet(live());
  assert.deepEqual(socket.requests("subscribe"), [{ ...pipeline, events: ["delete", "stage-change"] }]);
  await fire(socket, "pipeline-update", { pipelineId: "p1", dealId: "deal_1", newStage: "won", position: "d.0.1" });
  await fire(socket, "pipeline-update", { pipelineId: "p2", dealId: "deal_2", newStage: "won", position: "d.0.2" });
  await fire(socket, "resource-delete", { resource: "deal", id: "deal_3", position: "d.0.3" });
  assert.deepEqual(updates, [["pipeline-update", "deal_1"]]);
  assert.deepEqual(deletes, [["resource-delete", "deal_3"]]);
});

test("a refused subscription says so", async () => {
  const error = { code: "FORBIDDEN", message: "another organisation" };
  const { io, live } = bridge((event) => (event === "subscribe" ? { ok: false, error } : { ok: true }));
  const view = await mount(io, h(Contact));
  await greet(live());
  assert.equal(view.getByTestId("status").textContent, "refused");
});

test("a revoked subscription shows as refused", async () => {
  const { io, live } = bridge();
  const view = await mount(io, h(Contact));
  const socket = live();
  await greet(socket);
  assert.equal(view.getByTestId("status").textContent, "subscribed");
  await fire(socket, "subscription-revoked", {
    subscription: { resource: "contact", id: "contact_123" },
    code: "FORBIDDEN",
    message: "access to contact contact_123 was revoked",
    timestamp: "2025-01-10T12:00:00.000Z",
  });
  assert.equal(view.getByTestId("status").textContent, "refused");
});

function Room() {
  const { members, typing } = useRoom({ type: "deal", id: "deal_1" });
  return h("div", null,
    h("p", { "data-testid": "members" }, members.map((m) => m.userName).join(",")),
    h("p", { "data-testid": "typing" }, typing.map((t) => `${t.userName}:${t.field}`).join(",")));
}

test("a room shows who is there and who is typing, from the join, the room's events and a rejoin", async () => {
  const bob = { userId: "user_bob", userName: "Bob" };
  const { io, live } = bridge((event) =>
    event === "join-room" ? { ok: true, room: { type: "deal", id: "deal_1" }, members: [bob], typing: [] } : { ok: true });
  const view = await mount(io, [h(Room, { key: 1 }), h(Room, { key: 2 })], { strict: true });
  const socket = await greet(live());
  assert.deepEqual(socket.requests("join-room"), [{ type: "deal", id: "deal_1" }]);
  const shown = (id) => view.getAllByTestId(id).map((p) => p.textContent);
  assert.deepEqual(shown("members"), ["Bob", "Bob"]);

  const room = { roomType: "deal", roomId: "deal_1" };
  await fire(socket, "user-joined", { ...room, userId: "user_carol", userName: "Carol" });
  await fire(socket, "user-joined", { roomType: "deal", roomId: "deal_2", userId: "user_dan", userName: "Dan" });
  assert.deepEqual(shown("members"), ["Bob,Carol", "Bob,Carol"]);
  const now = Date.now();
  await fire(socket, "user-typing", {
    ...room, userId: "user_carol", userName: "Carol", field: "notes",
    timestamp: new Date(now).toISOString(), expiresAt: new Date(now + 150).toISOString(),
  });
  assert.deepEqual(shown("typing"), ["Carol:notes", "Carol:notes"]);
  await waitFor(() => assert.deepEqual(shown("typing"), ["", ""]), { timeout: 2000 });
  await fire(socket, "user-left", { ...room, userId: "user_bob", userName: "Bob" });
  assert.deepEqual(shown("members"), ["Carol", "Carol"]);

  const erin = { userId: "user_erin", userName: "Erin" };
  const expiresAt = new Date(Date.now() + 60_000).toISOString();
  await fire(socket, "room-rejoined", {
    ok: true, room: { type: "deal", id: "deal_1" }, members: [erin], typing: [{ ...erin, field: "title", expiresAt }],
  });
  assert.deepEqual(shown("members"), ["Erin", "Erin"]);
  assert.deepEqual(shown("typing"), ["Erin:title", "Erin:title"]);
  view.unmount();
  assert.deepEqual(socket.requests("leave-room"), [], "closing the socket leaves every room");
});

test("leaving the last component of a room leaves it", async () => {
  const { io, live } = bridge((event) => (event === "join-room" ? { ok: true, members: [], typing: [] } : { ok: true }));
  const view = await mount(io, h(Room));
  const socket = await greet(live());
  await act(async () => view.rerender(h(CrmBridgeProvider, { url: "http://bridge", token: "t1", io }, null)));
  assert.deepEqual(socket.requests("leave-room"), [{ type: "deal", id: "deal_1" }]);
});

function Connection() {
  const { state, recovered, replayed, gaps, error } = useConnection();
  return h("p", { "data-testid": "connection" }, JSON.stringify({ state, recovered, replayed, gaps: gaps.length, error: error?.code ?? null }));
}

test("the connection's state follows the socket's events", async () => {
  const { io, live } = bridge((event, request) =>
    event === "subscribe" ? { ...subscribed(request), replaying: Boolean(request.since) } : { ok: true });
  const view = await mount(io, [h(Connection, { key: 1 }), h(Contact, { key: 2 })]);
  const socket = live();
  const shown = () => JSON.parse(view.getByTestId("connection").textContent);
  assert.equal(shown().state, "connecting");
  await fire(socket, "connect");
  assert.equal(shown().state, "connecting", "connect alone is not the bridge's welcome");
  await fire(socket, "connected", { sessionId: "s1", userId: "user_alice", notificationsCursor: "1:n0.0" });
  assert.deepEqual(shown(), { state: "connected", recovered: null, replayed: 0, gaps: 0, error: null });

  await fire(socket, "disconnect", "transport close"); // socket.active: socket.io reconnects
  assert.equal(shown().state, "reconnecting");
  await fire(socket, "connect");
  assert.equal(shown().state, "reconnecting");
  await fire(socket, "connected", { sessionId: "s2", userId: "user_alice", notificationsCursor: "1:n0.0" });
  assert.deepEqual(shown(), { state: "connected", recovered: null, replayed: 0, gaps: 0, error: null });
  // The module resubscribed with its cursor; the bridge replays, then says it resumed.
  assert.deepEqual(socket.requests("subscribe").at(-1), { ...CONTACT, since: "1:c0.5" });
  await fire(socket, "resource-update", { resource: "contact", id: "contact_123", action: "update", replayed: true, position: "c.0.5" });
  await fire(socket, "subscription-resumed", { subscription: CONTACT, cursor: "1:c0.6", replayed: 1, gaps: [] });
  assert.deepEqual(shown(), { state: "connected", recovered: true, replayed: 1, gaps: 0, error: null });
});

test("a refused credential shows as refused, and a new token connects again", async () => {
  const { io, live } = bridge();
  const view = await mount(io, h(Connection));
  const socket = live();
  const shown = () => JSON.parse(view.getByTestId("connection").textContent);
  await fire(socket, "connect");
  await fire(socket, "error", { code: "UNAUTHORIZED", message: "Invalid authentication token", timestamp: "2025-01-10T12:00:00.000Z" });
  socket.active = false; // the bridge disconnected it: socket.io does not reconnect
  await fire(socket, "disconnect", "io server disconnect");
  assert.deepEqual(shown(), { state: "refused", recovered: null, replayed: 0, gaps: 0, error: "UNAUTHORIZED" });
  assert.equal(socket.connects, 1);
  await view.rerenderWith("t2");
  assert.equal(socket.auth.token, "t2");
  assert.equal(socket.connects, 2, "connected again with the new token");
  await fire(socket, "connected", { sessionId: "s2", userId: "user_alice" });
  assert.deepEqual(shown(), { state: "connected", recovered: null, replayed: 0, gaps: 0, error: null });
});

test("a slow consumer cut off is reconnecting, and a server disconnect without a refusal is disconnected", async () => {
  const { io, live } = bridge();
  const view = await mount(io, h(Connection));
  const socket = live();
  const shown = () => JSON.parse(view.getByTestId("connection").textContent);
  await fire(socket, "connected", { sessionId: "s1", userId: "user_alice" });
  await fire(socket, "error", { code: "RATE_LIMITED", message: "too slow", details: { reason: "slow_consumer" } });
  socket.active = false;
  await fire(socket, "disconnect", "io server disconnect");
  assert.equal(shown().state, "reconnecting");
  await fire(socket, "connected", { sessionId: "s2", userId: "user_alice" });
  await fire(socket, "error", { code: "SERVER_ERROR", message: "replay unavailable", details: { reason: "replay_unavailable" } });
  await fire(socket, "disconnect", "io server disconnect");
  assert.equal(shown().state, "disconnected");
});

test("turned away as RATE_LIMITED, the provider connects again after retryAfter; the page's own disconnect stays", async () => {
  const { io, live } = bridge();
  const view = await mount(io, h(Connection));
  const socket = live();
  const shown = () => JSON.parse(view.getByTestId("connection").textContent);
  await fire(socket, "connect");
  await fire(socket, "error", { code: "RATE_LIMITED", message: "too many", retryAfter: 20, details: { reason: "handshake_rate" } });
  socket.active = false;
  await fire(socket, "disconnect", "io server disconnect");
  assert.equal(shown().state, "reconnecting");
  await waitFor(() => assert.equal(socket.connects, 2));
  await greet(socket);
  socket.active = false;
  await fire(socket, "disconnect", "io client disconnect");
  assert.equal(shown().state, "disconnected");
});

function Notifications() {
  return h("p", { "data-testid": "notifications" }, useNotifications().map((n) => n.title).join(","));
}

test("notifications arrive without a subscription, newest last", async () => {
  const { io, live } = bridge();
  const view = await mount(io, h(Notifications));
  const socket = await greet(live());
  await fire(socket, "notification", { id: "n1", title: "Mentioned", position: "n.0.1" });
  await fire(socket, "notification", { id: "n2", title: "Assigned", position: "n.0.2" });
  assert.equal(view.getByTestId("notifications").textContent, "Mentioned,Assigned");
  assert.equal(socket.requests("subscribe").length, 0);
});

test("a hook outside the provider says where it belongs", () => {
  const Lost = () => useConnection();
  const quiet = console.error;
  console.error = () => {};
  try {
    assert.throws(() => render(h(Lost)), /useConnection\(\) must be used inside <CrmBridgeProvider>/);
  } finally {
    console.error = quiet;
  }
});

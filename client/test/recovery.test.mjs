// Unit tests of the client module (client/recovery.js: cursors, resumes,
// the recovered report), against a stand-in for socket.io-client's socket:
// no bridge, no network. `make test` runs them with the package's other
// tests; the integration tests drive the module against a real bridge
// through tests/client/driver.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { withRecovery } from "../recovery.js";
import { fakeSocket } from "./fake-socket.mjs";

const ALL_DEAL_EVENTS = ["create", "update", "delete", "stage-change", "assignment", "comment"];

/** The bridge's acknowledgements, as `requests.rs` makes them. */
function bridgeReplies(event, data) {
  if (event === "join-room") return { ok: true, room: data, members: [], typing: [] };
  if (event !== "subscribe") return { ok: true };
  if (Array.isArray(data.events) && data.events.length === 0) {
    return { ok: false, error: { code: "INVALID_REQUEST", message: "`events` must not be empty" } };
  }
  const { since, events, ...named } = data;
  const subscription = { ...named, events: events ?? ALL_DEAL_EVENTS };
  if (since) return { ok: true, subscription, cursor: since, replaying: true };
  return { ok: true, subscription, replaced: false, cursor: "1:d0.5", replayed: 0 };
}

/** A page's socket, connected and greeted by the bridge. */
function page(replies = bridgeReplies, options = {}) {
  const socket = fakeSocket(replies);
  const recovering = withRecovery((_, opts) => Object.assign(socket, opts))("http://bridge", options);
  const reports = [];
  recovering.on("recovered", (report) => reports.push(report));
  greet(socket);
  return { socket, recovering, reports };
}

/**
 * The handshake, accepted: `connect`, the greeting, and (unless `inbox` is
 * false) the end of the notifications' resume the handshake asked for.
 */
function greet(socket, { notificationsCursor = "1:n0.7", inbox = true } = {}) {
  socket.handshake();
  socket.fire("connect");
  socket.fire("connected", { sessionId: "s", userId: "u", notificationsCursor });
  const since = socket.handshakes.at(-1)?.notificationsSince;
  if (since && inbox) {
    socket.fire("subscription-resumed", { subscription: { resource: "notification" }, cursor: since, replayed: 0, gaps: [] });
  }
}

/** The transport drops and socket.io-client reconnects; `greeting` false: the bridge refuses it. */
function reconnect(socket, { greeting = true, inbox = true } = {}) {
  socket.fire("disconnect", "transport close");
  if (greeting) return greet(socket, { inbox });
  socket.handshake();
  socket.fire("connect");
  socket.fire("error", { code: "UNAUTHORIZED", message: "Invalid authentication token", timestamp: "t" });
  socket.fire("disconnect", "io server disconnect");
}

const subscribes = (socket) => socket.sent.filter(([event]) => event === "subscribe").map(([, data]) => data);

const REQUEST = { resource: "deal", filter: { pipelineId: "p" } };

/** The bridge's `subscription-resumed` for REQUEST with these events. */
const resumed = (events = ALL_DEAL_EVENTS, gaps = []) => ({
  subscription: { ...REQUEST, events },
  cursor: "1:d0.9",
  replayed: 1,
  gaps,
});

/** A module socket subscribed with the acknowledgement's `cursor`; returns it and the resubscription's `since` after a reconnect. */
function subscribed(cursor) {
  const socket = fakeSocket(() => ({ ok: true, subscription: { ...REQUEST, events: [] }, cursor }));
  const recovering = withRecovery(() => socket)("http://bridge");
  greet(socket);
  recovering.emit("subscribe", REQUEST, () => {});
  const since = () => {
    reconnect(socket);
    return subscribes(socket).pop().since;
  };
  return { socket, since };
}

test("positions of the cursor's log advance it by offset", () => {
  const { socket, since } = subscribed("2:d@OLDOLDOL,d0.10,d1.4");
  socket.fire("resource-update", { position: "d.0.10.OLDOLDOL" });
  socket.fire("resource-update", { position: "d.0.5.OLDOLDOL" });
  assert.equal(since(), "2:d@OLDOLDOL,d0.11,d1.4");
});

test("a position of another log replaces the topic's entries", () => {
  const { socket, since } = subscribed("2:d@OLDOLDOL,d0.10,d1.4");
  // The recreated topic's log: offsets below the old cursor's are new.
  socket.fire("resource-update", { position: "d.0.3.NEWNEWNE" });
  socket.fire("resource-update", { position: "d.0.2.NEWNEWNE" });
  socket.fire("pipeline-update", { position: "d.0.4.NEWNEWNE" });
  assert.equal(since(), "2:d@NEWNEWNE,d0.5");
});

test("without tags, offsets alone, as before", () => {
  const { socket, since } = subscribed("1:d0.10");
  socket.fire("resource-update", { position: "d.0.12" });
  socket.fire("resource-update", { position: "d.0.3" });
  assert.equal(since(), "1:d0.13");
  // A version 1 cursor takes the log the first tagged position names.
  const tagged = subscribed("1:d0.10");
  tagged.socket.fire("resource-update", { position: "d.0.12.NEWNEWNE" });
  tagged.socket.fire("resource-update", { position: "d.0.3.NEWNEWNE" });
  assert.equal(tagged.since(), "2:d0.13,d@NEWNEWNE");
});

test("an untagged position leaves the cursor's log as it is", () => {
  const { socket, since } = subscribed("2:d@OLDOLDOL,d0.10");
  socket.fire("resource-update", { position: "d.0.10" });
  assert.equal(since(), "2:d@OLDOLDOL,d0.11");
});

test("re-subscribing on every connect with new arrays in another order is answered from the resume", () => {
  const events = ["update", "stage-change"];
  const { socket, recovering, reports } = page();
  const replies = [];
  // The seed's Best Practices: resubscribeToResources() on every `connect`.
  recovering.on("connect", () =>
    recovering.emit("subscribe", { ...REQUEST, events: [...events].reverse() }, (reply) => replies.push(reply)),
  );
  recovering.emit("subscribe", { ...REQUEST, events }, (reply) => replies.push(reply));
  socket.fire("pipeline-update", { position: "d.0.6" });
  // The first `connect` was before the page listened; this one re-subscribes.
  reconnect(socket);
  assert.deepEqual(subscribes(socket), [
    { ...REQUEST, events },
    { ...REQUEST, events, since: "1:d0.7" },
  ]);
  assert.equal(replies.length, 2);
  assert.deepEqual(replies[1], {
    ok: true,
    subscription: { ...REQUEST, events },
    replaced: true,
    cursor: "1:d0.7",
    replayed: 0,
  });
  socket.fire("pipeline-update", { position: "d.0.7", replayed: true });
  assert.deepEqual(reports, []);
  socket.fire("subscription-resumed", resumed(events));
  assert.deepEqual(reports, [{ recovered: true, replayed: 1, gaps: [] }]);
  assert.equal(recovering.recovered, true);
  // After the resume, the same again is still answered locally.
  recovering.emit("subscribe", { ...REQUEST, events: ["stage-change", "update", "update"] }, (r) => replies.push(r));
  assert.equal(subscribes(socket).length, 2);
  assert.equal(replies[2].cursor, "1:d0.9");
});

test("absent events and all of them listed are the same subscription; [] is not", () => {
  const { socket, recovering } = page();
  recovering.emit("subscribe", REQUEST);
  recovering.emit("subscribe", { ...REQUEST, events: [...ALL_DEAL_EVENTS].reverse() });
  recovering.emit("subscribe", { ...REQUEST, events: null });
  // Learnt from that acknowledgement: the full list is all of a deal's events.
  const other = { resource: "deal", id: "deal_1" };
  recovering.emit("subscribe", { ...other, events: ALL_DEAL_EVENTS });
  recovering.emit("subscribe", other);
  assert.equal(subscribes(socket).length, 2);
  const refused = [];
  recovering.emit("subscribe", { ...REQUEST, events: [] }, (reply) => refused.push(reply));
  assert.equal(refused[0].error.code, "INVALID_REQUEST");
  // Refused, the subscription the bridge holds is still the module's.
  reconnect(socket);
  assert.deepEqual(subscribes(socket).slice(-2), [
    { ...REQUEST, since: "1:d0.5" },
    { ...other, events: ALL_DEAL_EVENTS, since: "1:d0.5" },
  ]);
});

test("other events during a resume go out once it has settled, and the report is the resume's", () => {
  const { socket, recovering, reports } = page();
  recovering.emit("subscribe", { ...REQUEST, events: ["update"] });
  reconnect(socket);
  const replies = [];
  recovering.emit("subscribe", { ...REQUEST, events: ["update", "delete"] }, (reply) => replies.push(reply));
  // A plain subscribe now would cut the replay's window.
  assert.equal(subscribes(socket).length, 2);
  assert.deepEqual(replies, []);
  socket.fire("subscription-resumed", resumed(["update"]));
  assert.deepEqual(subscribes(socket).pop(), { ...REQUEST, events: ["update", "delete"] });
  assert.deepEqual(replies[0].subscription.events, ["update", "delete"]);
  assert.deepEqual(reports, [{ recovered: true, replayed: 0, gaps: [] }]);
  // The next reconnect resumes the new events.
  reconnect(socket);
  assert.deepEqual(subscribes(socket).pop().events, ["update", "delete"]);
});

test("auth as a callback resumes the notifications too, on every CONNECT", () => {
  let token = "first";
  const { socket, recovering } = page(bridgeReplies, { auth: (cb) => cb({ token }) });
  assert.deepEqual(socket.handshakes[0], { token: "first" });
  recovering.fire("notification", { position: "n.0.7" });
  token = "refreshed";
  reconnect(socket);
  assert.deepEqual(socket.handshakes[1], { token: "refreshed", notificationsSince: "1:n0.8" });
});

test("an auth object the page mutates or replaces keeps working, and is left as the page made it", () => {
  const auth = { token: "first" };
  const { socket, recovering } = page(bridgeReplies, { auth });
  socket.fire("disconnect", "io server disconnect");
  recovering.auth.token = "fresh"; // the seed's Error Recovery
  greet(socket);
  assert.deepEqual(socket.handshakes[1], { token: "fresh", notificationsSince: "1:n0.7" });
  assert.deepEqual(auth, { token: "fresh" });
  recovering.auth = { token: "other" };
  reconnect(socket);
  assert.deepEqual(socket.handshakes[2], { token: "other", notificationsSince: "1:n0.7" });
});

test("a refused handshake neither resumes nor reports; the next greeted connection does, from the same cursors", () => {
  const { socket, recovering, reports } = page();
  recovering.emit("subscribe", REQUEST);
  const replies = [];
  recovering.on("connect", () => recovering.emit("subscribe", REQUEST, (reply) => replies.push(reply)));
  reconnect(socket, { greeting: false });
  assert.equal(subscribes(socket).length, 1, "nothing goes out on a refused connection");
  assert.deepEqual(reports, []);
  assert.equal(recovering.recovered, false);
  // The page refreshes its token and connects again.
  greet(socket, { notificationsCursor: "1:n0.99" });
  assert.deepEqual(socket.handshakes.slice(1), [
    { notificationsSince: "1:n0.7" },
    { notificationsSince: "1:n0.7" },
  ]);
  assert.deepEqual(subscribes(socket).pop(), { ...REQUEST, since: "1:d0.5" });
  assert.equal(replies.length, 2, "each connect's re-subscribe is answered by the resume");
  socket.fire("subscription-resumed", resumed());
  assert.equal(reports.length, 1);
  // The greeting's cursor of a later connection is not the inbox's.
  reconnect(socket);
  assert.equal(socket.handshakes.pop().notificationsSince, "1:n0.7");
});

test("a subscription made during a resume goes out at once and is not waited for", () => {
  const { socket, recovering, reports } = page();
  recovering.emit("subscribe", REQUEST);
  reconnect(socket);
  const other = { resource: "deal", id: "deal_1" };
  recovering.emit("subscribe", other);
  assert.deepEqual(subscribes(socket).pop(), other);
  socket.fire("subscription-resumed", resumed());
  assert.deepEqual(reports, [{ recovered: true, replayed: 0, gaps: [] }]);
});

test("unsubscribing one being resumed waits for its acknowledgement and settles the report", () => {
  const socket = fakeSocket(() => undefined);
  const recovering = withRecovery(() => socket)("http://bridge");
  const reports = [];
  recovering.on("recovered", (report) => reports.push(report));
  greet(socket);
  recovering.emit("subscribe", REQUEST);
  socket.acks.shift().answer(bridgeReplies("subscribe", REQUEST));
  reconnect(socket);
  const unsubscribed = [];
  recovering.emit("unsubscribe", REQUEST, (reply) => unsubscribed.push(reply));
  assert.equal(socket.sent.at(-1)[0], "subscribe", "not before the resume's acknowledgement");
  const resume = socket.acks.shift();
  resume.answer(bridgeReplies("subscribe", resume.data));
  assert.deepEqual(socket.sent.at(-1).slice(0, 2), ["unsubscribe", REQUEST]);
  socket.acks.shift().answer({ ok: true });
  assert.deepEqual(unsubscribed, [{ ok: true }]);
  assert.deepEqual(reports, [{ recovered: true, replayed: 0, gaps: [] }]);
  // Its replay's end may still arrive: neither a second report nor a gap.
  socket.fire("subscription-resumed", resumed(ALL_DEAL_EVENTS, [{ reason: "limit" }]));
  assert.equal(reports.length, 1);
  reconnect(socket);
  assert.equal(subscribes(socket).length, 2, "nothing to resume");
});

test("the report fires once, when every resumed subscription has settled, false when something was lost", () => {
  const { socket, recovering, reports } = page((event, data) =>
    data?.id === "gone" && data.since ? { ok: false, error: { code: "FORBIDDEN" } } : bridgeReplies(event, data),
  );
  recovering.emit("subscribe", REQUEST);
  recovering.emit("subscribe", { resource: "deal", id: "gone" });
  reconnect(socket);
  assert.deepEqual(reports, []);
  const gap = { reason: "limit", topic: "deals", partition: 0, from: 1, to: 3 };
  socket.fire("subscription-resumed", resumed(ALL_DEAL_EVENTS, [gap]));
  socket.fire("subscription-resumed", resumed());
  assert.deepEqual(reports, [
    { recovered: false, replayed: 0, gaps: [{ subscription: { ...REQUEST, events: ALL_DEAL_EVENTS }, ...gap }] },
  ]);
  assert.equal(recovering.recovered, false);
  // The refused one is dropped: the next reconnect resumes the other only.
  reconnect(socket);
  assert.deepEqual(subscribes(socket).slice(-1), [{ ...REQUEST, since: "1:d0.9" }]);
});

test("notifications resume in the handshake, and the report waits for them", () => {
  const { socket, recovering, reports } = page();
  reconnect(socket, { inbox: false });
  assert.deepEqual(reports, []);
  recovering.fire("notification", { position: "n.0.7", replayed: true });
  const inbox = { subscription: { resource: "notification" }, cursor: "1:n0.8", replayed: 1, gaps: [] };
  socket.fire("subscription-resumed", inbox);
  assert.deepEqual(reports, [{ recovered: true, replayed: 1, gaps: [] }]);
  // What was replayed is not replayed again.
  recovering.fire("notification", { position: "n.0.8" });
  reconnect(socket);
  assert.equal(socket.handshakes.pop().notificationsSince, "1:n0.9");
});

test("rooms are rejoined once the bridge greets the connection", () => {
  const { socket, recovering } = page();
  const rejoined = [];
  recovering.on("room-rejoined", (reply) => rejoined.push(reply));
  recovering.emit("join-room", { type: "deal", id: "deal_1" });
  socket.fire("disconnect", "transport close");
  socket.handshake();
  socket.fire("connect");
  assert.equal(socket.sent.filter(([event]) => event === "join-room").length, 1);
  socket.fire("connected", {});
  assert.equal(socket.sent.filter(([event]) => event === "join-room").length, 2);
  assert.deepEqual(rejoined[0].room, { type: "deal", id: "deal_1" });
});

test("socket.io-client's own `recovered` does not overwrite the module's", () => {
  const { socket, recovering } = page();
  reconnect(socket);
  assert.equal(recovering.recovered, true);
  recovering.recovered = undefined; // what socket.io-client's onconnect does
  assert.equal(recovering.recovered, true);
});

test("what the page emits before any greeting goes out once, on the first connection the bridge accepts", () => {
  const socket = fakeSocket(bridgeReplies);
  const recovering = withRecovery(() => socket)("http://bridge");
  const replies = [];
  recovering.emit("subscribe", REQUEST, (reply) => replies.push(reply));
  recovering.emit("ping");
  // Refused at the first handshake, then accepted with a fresh token.
  socket.handshake();
  socket.fire("connect");
  socket.fire("error", { code: "UNAUTHORIZED", message: "Invalid authentication token", timestamp: "t" });
  socket.fire("disconnect", "io server disconnect");
  assert.deepEqual(socket.sent, []);
  greet(socket);
  assert.deepEqual(
    socket.sent.map(([event]) => event),
    ["subscribe", "ping"],
  );
  assert.equal(replies[0].replaced, false, "the bridge's own answer to a new subscription");
});

test("a revoked subscription and room are not resumed", () => {
  const { socket, recovering } = page();
  const deal = { resource: "deal", id: "d1" };
  recovering.emit("subscribe", deal, () => {});
  recovering.emit("subscribe", { resource: "deal", id: "d2" }, () => {});
  recovering.emit("join-room", { type: "deal", id: "d1" }, () => {});
  socket.fire("subscription-revoked", {
    subscription: deal,
    room: { type: "deal", id: "d1" },
    code: "FORBIDDEN",
    message: "access to deal d1 was revoked",
    timestamp: "t",
  });
  const before = socket.sent.length;
  reconnect(socket);
  const after = socket.sent.slice(before).map(([event, data]) => [event, data.id]);
  assert.deepEqual(after, [["subscribe", "d2"]]);
});

// Unit tests of the client module's cursors (client/recovery.js), against a
// stand-in for socket.io-client's socket: no bridge, no network. Run with
// `node --test tests/client/` (the integration tests drive the module
// against a real bridge through driver.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { withRecovery } from "../../client/recovery.js";

/** What the module uses of a socket.io-client socket; `replies` answers acknowledged emits. */
function fakeSocket(replies) {
  const handlers = new Map();
  const sent = [];
  return {
    sent,
    io: {},
    auth: {},
    on(event, handler) {
      if (!handlers.has(event)) handlers.set(event, []);
      handlers.get(event).push(handler);
      return this;
    },
    listeners: (event) => handlers.get(event) ?? [],
    emit(event, ...args) {
      sent.push([event, ...args]);
      const callback = args[args.length - 1];
      if (typeof callback === "function") callback(replies(event, args[0]));
      return this;
    },
    fire(event, data) {
      for (const handler of this.listeners(event)) handler(data);
    },
    connect() {},
  };
}

const REQUEST = { resource: "deal", filter: { pipelineId: "p" } };

/** A module socket subscribed with the acknowledgement's `cursor`; returns it and the resubscription's `since` after a reconnect. */
function subscribed(cursor) {
  const socket = fakeSocket(() => ({ ok: true, subscription: { ...REQUEST, events: [] }, cursor }));
  const recovering = withRecovery(() => socket)("http://bridge");
  socket.fire("connect");
  recovering.emit("subscribe", REQUEST, () => {});
  const since = () => {
    socket.fire("disconnect", "transport close");
    socket.fire("connect");
    const [, request] = socket.sent.filter(([event]) => event === "subscribe").pop();
    return request.since;
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

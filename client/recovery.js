// crm-bridge client module: wraps a socket.io-client socket so that a page
// recovers what it missed with no code of its own.
//
// It remembers every `subscribe` (and the user's notifications) with a resume
// cursor, advances the cursors from the `position` every event carries, and
// on each reconnect subscribes again with `since`: the bridge replays what
// was missed from Kafka, then continues live, with no gap and no duplicate.
// Notifications resume in the handshake itself: every CONNECT carries
// `notificationsSince`, whatever `auth` is (an object, one the page mutates
// or replaces, or a callback).
//
// A connection counts from the bridge's `connected` greeting, not from
// `connect`: a handshake the bridge refuses is connected too, for a moment,
// before its `error` and disconnect. Until the greeting the module holds
// whatever the page emits; after it, it resumes first, then sends what it
// held. After a reconnect `socket.recovered` and `socket.replayed` say how
// it went, and one `recovered` event reports `{ recovered, replayed, gaps }`
// once every resumed subscription has settled: `recovered` is true when
// none was refused and Kafka still held everything missed.
//
// What the page asks of a subscription the module holds:
// - the same again (the same `events` as a set, in any order; absent means
//   all, as does the full list), as the seed's "re-subscribe on every
//   connect" does: answered locally, as the bridge answers a repeated
//   subscribe (`{ ok, subscription, replaced: true, cursor, replayed: 0 }`),
//   from the resume if one is under way, and never sent;
// - other `events`: a real change, sent in the page's order once the
//   subscription's pending acknowledgement and replay have settled (a plain
//   subscribe would cut a replay's window); the new events count from then,
//   as a fresh subscription's do, and the reconnect's report is unaffected;
// - `unsubscribe`: sent once its pending acknowledgement is in (the bridge
//   then cancels its replay); a subscription dropped while resuming settles
//   the report as nothing lost.
//
// A `subscription-revoked` (a grant was revoked) ends what it names: that
// subscription and room are not resumed.
//
// Rooms joined with `join-room` are joined again after a reconnect; each
// rejoin's acknowledgement (who is there now, who is typing) is reported as
// a `room-rejoined` event. A room's presence and resource events are live
// only: subscribe to the resource as well to resume its events gap-free.
//
// Served by the bridge at /client/crm-bridge-client.js; published as the npm
// package `crm-bridge-client`. No dependencies: pass it socket.io-client's io.
// Beside it: cursor.js (cursors and positions) and requests.js (what
// identifies a request, and how the module's own go out).

import { advance, formatCursor, parseCursor } from "./cursor.js";
import {
  canonicalKey,
  eventSet,
  isRateLimited,
  keyOf,
  paced,
  roomKeyOf,
  sameSubscription,
  sendRetrying,
} from "./requests.js";

/** Before reconnecting after being cut off as a slow consumer. */
const SLOW_CONSUMER_PAUSE_MS = 500;
/** socket.io-parser's packet type of a handshake (`PacketType.CONNECT`). */
const CONNECT_PACKET = 0;

const EVENTS = ["resource-update", "resource-delete", "pipeline-update", "email-received", "notification"];

function call(callback, value) {
  if (typeof callback === "function") callback(value);
}

export function withRecovery(io) {
  return function connect(url, options) {
    return recovering(io(url, options));
  };
}

function recovering(socket) {
  const send = socket.emit.bind(socket);
  /**
   * key → { request, subscription, canonical, cursor, inFlight, replaying,
   * waiters, queue }: `request` is what the page asked for last (without
   * `since`); `subscription` and `cursor` come from its acknowledgement
   * (null before one); `inFlight` while a subscribe of it awaits its
   * acknowledgement (or its resume is scheduled); `replaying` until its
   * `subscription-resumed`; `waiters` are the page's callbacks the next
   * acknowledgement answers; `queue` the page's requests of it waiting for
   * the two to settle, as [event, args, callback].
   */
  const subscriptions = new Map();
  /** room key → the `join-room` request, once acknowledged */
  const rooms = new Map();
  /** resource → its events as a set, learnt from acknowledgements (see sameSubscription) */
  const allEvents = new Map();
  let inbox = null; // the notifications cursor
  let inboxResuming = false; // the last CONNECT resumed notifications
  /** Counts greeted connections; a callback of another one is stale. */
  let connection = 0;
  let greeted = false;
  /** The page's emits while no connection is greeted, as thunks. */
  let held = [];
  /** The current reconnect's resume: subscriptions not settled, refusals, gaps. */
  let round = null;
  let recovered = false;

  // socket.io-client sets its own `recovered` (connection state recovery,
  // which the bridge does not offer) on every connect: this one is ours.
  Object.defineProperty(socket, "recovered", { get: () => recovered, set() {}, configurable: true });
  socket.replayed = 0;

  const notify = (event, data) => socket.listeners(event).forEach((listener) => listener(data));
  const currentConnection = () => {
    const mine = connection;
    return () => greeted && connection === mine;
  };

  // Every CONNECT packet, however `auth` gave its data, resumes the inbox.
  // socket.io-client's `packet` (internal, but what every packet of 4.x
  // goes through) is the one place an object, a mutated object and a
  // callback meet; `auth` itself stays as the page made it.
  const packet = socket.packet.bind(socket);
  socket.packet = (outgoing) => {
    if (outgoing?.type !== CONNECT_PACKET) return packet(outgoing);
    inboxResuming = Boolean(inbox && inbox.size > 0);
    if (!inboxResuming) return packet(outgoing);
    return packet({ ...outgoing, data: { ...outgoing.data, notificationsSince: formatCursor(inbox) } });
  };

  function subscribe(request, callback) {
    const key = keyOf(request);
    const entry = subscriptions.get(key);
    if (!entry) return fresh(key, request, callback);
    entry.queue.push(["subscribe", [request], callback]);
    pump(entry);
  }

  function unsubscribe(request, args, callback) {
    const entry = subscriptions.get(keyOf(request));
    if (!entry) return void sendAny("unsubscribe", args, callback);
    entry.queue.push(["unsubscribe", args, callback]);
    pump(entry);
  }

  /** Works through the page's requests of `entry` that can go now (see the header). */
  function pump(entry) {
    while (entry.queue.length > 0 && !entry.inFlight) {
      const [event, args, callback] = entry.queue[0];
      if (event === "subscribe" && sameSubscription(entry, args[0], allEvents)) {
        entry.queue.shift();
        call(callback, repeatReply(entry));
        continue;
      }
      if (event === "subscribe" && entry.replaying) return;
      entry.queue.shift();
      if (event === "subscribe") {
        change(entry, args[0], callback);
      } else {
        drop(entry, args, callback);
      }
    }
  }

  function fresh(key, request, callback) {
    const entry = {
      request: withoutSince(request),
      subscription: null,
      canonical: null,
      cursor: null,
      inFlight: false,
      replaying: false,
      waiters: [callback],
      queue: [],
    };
    subscriptions.set(key, entry);
    sendSubscribe(entry, request, (reply) => {
      if (!reply?.ok && subscriptions.get(key) === entry) subscriptions.delete(key);
      return reply;
    });
  }

  /** Other events: the bridge replaces them; refused, the old ones stay. */
  function change(entry, request, callback) {
    const before = entry.request;
    entry.request = withoutSince(request);
    entry.waiters.push(callback);
    sendSubscribe(entry, request, (reply) => {
      if (!reply?.ok) entry.request = before;
      return reply;
    });
  }

  /** Unsubscribes: a resume of it under way has settled, losing nothing. */
  function drop(entry, args, callback) {
    subscriptions.delete(keyOf(entry.request));
    settle(entry);
    sendAny("unsubscribe", args, callback);
    release(entry);
  }

  /**
   * Sends a subscribe of `entry`; its acknowledgement answers the waiters,
   * with `answer(reply)` (what the page is told), then lets its queue go.
   */
  function sendSubscribe(entry, payload, answer) {
    entry.inFlight = true;
    const current = currentConnection();
    sendRetrying(send, current, "subscribe", payload, (reply) => {
      if (!current()) return;
      entry.inFlight = false;
      if (reply?.ok) accept(entry, reply);
      const told = answer(reply);
      entry.waiters.splice(0).forEach((waiter) => call(waiter, told));
      release(entry);
    });
  }

  /**
   * Lets the page's requests of `entry` go: to it while it is held, else
   * (refused, unsubscribed) as requests of a new subscription.
   */
  function release(entry) {
    if (subscriptions.get(keyOf(entry.request)) === entry) return pump(entry);
    for (const [event, args, callback] of entry.queue.splice(0)) handle(event, args, callback);
  }

  /** Takes an acknowledgement; a replaying one waits for `subscription-resumed`. */
  function accept(entry, reply) {
    entry.subscription = reply.subscription ?? null;
    const events = entry.request.events;
    if (entry.subscription && (events === undefined || events === null)) {
      allEvents.set(entry.request.resource, eventSet(entry.subscription.events));
    }
    entry.canonical = canonicalKey(reply.subscription);
    entry.cursor = parseCursor(reply.cursor);
    entry.replaying = Boolean(reply.replaying);
  }

  /** How the bridge answers a subscribe of what a connection already holds. */
  function repeatReply(entry) {
    const cursor = formatCursor(entry.cursor);
    return { ok: true, subscription: entry.subscription, replaced: true, cursor, replayed: 0 };
  }

  function joinRoom(request, callback) {
    send("join-room", request, (reply) => {
      if (reply?.ok) rooms.set(roomKeyOf(request), { ...request });
      call(callback, reply);
    });
  }

  function sendAny(event, args, callback) {
    return callback ? send(event, ...args, callback) : send(event, ...args);
  }

  /** A page's emit on a greeted connection. */
  function handle(event, args, callback) {
    const request = args[0] && typeof args[0] === "object" ? args[0] : null;
    if (event === "subscribe" && request) return subscribe(request, callback);
    if (event === "unsubscribe" && request) return unsubscribe(request, args, callback);
    if (event === "join-room" && request) return joinRoom(request, callback);
    if (event === "leave-room" && request) rooms.delete(roomKeyOf(request));
    sendAny(event, args, callback);
  }

  socket.emit = (event, ...args) => {
    // socket.io-client's own queue (the `retries` option) sending again.
    if (socket.flags?.fromQueue) return send(event, ...args);
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
    if (greeted) handle(event, args, callback);
    else held.push(() => handle(event, args, callback));
    return socket;
  };

  // Registered before any of the page's listeners, so cursors are current
  // whenever the page sees an event.
  for (const name of EVENTS) {
    socket.on(name, (data) => {
      if (!data || typeof data.position !== "string") return;
      // Only the inbox's replay sends notifications, in order per partition.
      if (name === "notification" && inbox) advance(inbox, data.position);
      if (data.replayed) return void (socket.replayed += 1);
      // A subscription being resumed takes its cursor from `subscription-resumed`.
      for (const entry of subscriptions.values()) {
        if (entry.cursor && !entry.inFlight && !entry.replaying) advance(entry.cursor, data.position);
      }
    });
  }

  socket.on("connected", (data) => {
    greeted = true;
    connection += 1;
    if (connection > 1) resume();
    else inbox = parseCursor(data?.notificationsCursor);
    const page = held;
    held = [];
    page.forEach((job) => job());
  });

  socket.on("disconnect", () => {
    greeted = false;
    round = null;
    // Acknowledgements still due will never come: the resume sends again.
    for (const entry of subscriptions.values()) {
      entry.inFlight = false;
      entry.replaying = false;
    }
  });

  // Cut off as too slow: the bridge disconnected on purpose, so socket.io
  // will not reconnect by itself. Resume after a pause, at the page's pace.
  let cutOff = false;
  socket.on("error", (error) => {
    if (error?.details?.reason === "slow_consumer") cutOff = true;
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io server disconnect" && cutOff) {
      cutOff = false;
      // A fresh transport: the old one may still hold what it could not send.
      setTimeout(() => {
        socket.io.engine?.close();
        socket.connect();
      }, SLOW_CONSUMER_PAUSE_MS);
    }
  });

  /** A subscription of the current resume is done with: report once all are. */
  function settle(entry) {
    if (round?.unsettled.delete(entry)) report();
  }

  function report() {
    if (!round || round.unsettled.size > 0 || round.inbox) return;
    recovered = round.refused === 0 && round.gaps.length === 0;
    const { gaps } = round;
    round = null;
    notify("recovered", { recovered, replayed: socket.replayed, gaps });
  }

  socket.on("subscription-resumed", (data) => {
    const subscription = data?.subscription;
    const gaps = (data?.gaps ?? []).map((gap) => ({ subscription, ...gap }));
    if (subscription?.resource === "notification" && inbox) {
      inbox = parseCursor(data.cursor);
      if (round?.inbox) {
        round.inbox = false;
        round.gaps.push(...gaps);
        report();
      }
      return;
    }
    const key = canonicalKey(subscription);
    for (const entry of subscriptions.values()) {
      if (entry.canonical !== key || !entry.replaying) continue;
      entry.cursor = parseCursor(data.cursor);
      entry.replaying = false;
      if (round?.unsettled.has(entry)) round.gaps.push(...gaps);
      settle(entry);
      release(entry);
    }
  });

  // A grant was revoked: the bridge ended the subscription and the room
  // seat it names. Neither is asked for again on a reconnect (it would be
  // refused FORBIDDEN); the page may ask again once access is back.
  socket.on("subscription-revoked", (data) => {
    if (data?.room) rooms.delete(roomKeyOf(data.room));
    const key = canonicalKey(data?.subscription);
    if (key === null) return;
    for (const [name, entry] of subscriptions) {
      if (entry.canonical !== key) continue;
      subscriptions.delete(name);
      settle(entry);
    }
  });

  /** A greeted reconnect: rejoin the rooms, resubscribe from the cursors. */
  function resume() {
    recovered = false;
    socket.replayed = 0;
    const current = currentConnection();
    const mine = { unsettled: new Set(subscriptions.values()), refused: 0, gaps: [], inbox: inboxResuming };
    round = mine;
    const jobs = [...rooms].map(([key, request]) => () =>
      sendRetrying(send, current, "join-room", request, (reply) => {
        if (!reply?.ok && !isRateLimited(reply)) rooms.delete(key);
        notify("room-rejoined", reply);
      }),
    );
    for (const entry of mine.unsettled) {
      entry.inFlight = true; // the page's requests of it wait for the resume
      const since = entry.cursor ? { since: formatCursor(entry.cursor) } : {};
      const resumeOf = (reply) => {
        if (!reply?.ok) {
          mine.refused += 1;
          subscriptions.delete(keyOf(entry.request));
        }
        if (!entry.replaying) settle(entry);
        return reply?.ok && entry.cursor ? repeatReply(entry) : reply;
      };
      jobs.push(() => current() && sendSubscribe(entry, { ...entry.request, ...since }, resumeOf));
    }
    paced(jobs);
    report();
  }

  return socket;
}

function withoutSince(request) {
  const { since, ...rest } = request;
  return rest;
}

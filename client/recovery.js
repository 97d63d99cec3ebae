// crm-bridge client module: wraps a socket.io-client socket so that a page
// recovers what it missed with no code of its own.
//
// It remembers every `subscribe` (and the user's notifications) with a resume
// cursor, advances the cursors from the `position` every event carries, and
// on each reconnect subscribes again with `since`: the bridge replays what
// was missed from Kafka, then continues live, with no gap and no duplicate.
// After a reconnect `socket.recovered` and `socket.replayed` say how it went,
// and a `recovered` event reports `{ recovered, replayed, gaps }`.
//
// Rooms joined with `join-room` are joined again after a reconnect; each
// rejoin's acknowledgement (who is there now, who is typing) is reported as
// a `room-rejoined` event. A room's presence and resource events are live
// only: subscribe to the resource as well to resume its events gap-free.
//
// It also unpacks the bridge's `connect_error` (whose message is the error
// object as JSON) into `err.data`, so `err.data.code === "UNAUTHORIZED"`.
//
// Served by the bridge at /client/crm-bridge-client.js; published as the npm
// package `crm-bridge-client`. No dependencies: pass it socket.io-client's io.

/** Before reconnecting after being cut off as a slow consumer. */
const SLOW_CONSUMER_PAUSE_MS = 500;
/**
 * After a reconnect, rejoins and resubscribes go out this many at once, then
 * one per RESUME_SPACING_MS: under the bridge's event rate (100/s, bursts of
 * 100), however many there are.
 */
const RESUME_BURST = 50;
const RESUME_SPACING_MS = 12;
/** A request refused as RATE_LIMITED is sent again after `retryAfter`, this often. */
const RATE_LIMIT_RETRIES = 5;

const EVENTS = ["resource-update", "resource-delete", "pipeline-update", "email-received", "notification"];

/**
 * Cursor text → Map: "1:d0.120,d1.87" → Map("d0" → 120, "d1" → 87); version 2
 * also names each topic's log: "2:d@AbCd-_12,d0.120" → Map("d@" → "AbCd-_12", "d0" → 120).
 */
function parseCursor(text) {
  const map = new Map();
  if (typeof text !== "string" || !(text.startsWith("1:") || text.startsWith("2:"))) return map;
  for (const entry of text.slice(2).split(",")) {
    if (entry[1] === "@") {
      map.set(entry.slice(0, 2), entry.slice(2));
      continue;
    }
    const dot = entry.indexOf(".");
    if (dot > 1) map.set(entry.slice(0, dot), Number(entry.slice(dot + 1)));
  }
  return map;
}

function formatCursor(map) {
  const entries = [...map].map(([key, value]) => (key[1] === "@" ? `${key}${value}` : `${key}.${value}`));
  const tagged = [...map.keys()].some((key) => key[1] === "@");
  return (tagged ? "2:" : "1:") + entries.join(",");
}

/**
 * Advances `cursor` past `position` ("d.1.119", or "d.1.119.AbCd-_12" with its
 * log's tag) if the cursor covers that topic. A tag other than the cursor's
 * for the topic is a new log (the topic was recreated): its offsets say
 * nothing about the old one's, so the topic's entries are replaced, not
 * compared. Without a tag on either side, offsets alone, as ever.
 */
function advance(cursor, position) {
  const [topic, partition, offset, log] = position.split(".");
  const covered = [...cursor.keys()].some((key) => key[0] === topic);
  if (!covered) return;
  const key = topic + partition;
  const next = Number(offset) + 1;
  if (log) {
    const known = cursor.get(topic + "@");
    if (known !== undefined && known !== log) {
      for (const other of [...cursor.keys()]) if (other[0] === topic) cursor.delete(other);
      cursor.set(topic + "@", log);
      return void cursor.set(key, next);
    }
    cursor.set(topic + "@", log);
  }
  if (!(cursor.get(key) >= next)) cursor.set(key, next);
}

/** Identifies a subscription as the bridge describes it (its `events` aside). */
function canonicalKey(subscription) {
  if (!subscription) return null;
  const { events, ...rest } = subscription;
  return keyOf(rest);
}

/** Identifies a subscription request: resource + id or filter. */
function keyOf(request) {
  const filter = request.filter ? Object.entries(request.filter).sort() : null;
  return JSON.stringify([request.resource, request.id ?? null, filter]);
}

/** Identifies a room: type + id. */
function roomKeyOf(request) {
  return JSON.stringify([request.type, request.id]);
}

/** Runs `jobs` in a burst, then spaced out. */
function paced(jobs) {
  jobs.forEach((job, i) => (i < RESUME_BURST ? job() : setTimeout(job, (i - RESUME_BURST + 1) * RESUME_SPACING_MS)));
}

function isRateLimited(reply) {
  return reply?.ok === false && reply.error?.code === "RATE_LIMITED";
}

/** `send` with an acknowledgement, sent again after `retryAfter` when rate limited. */
function sendRetrying(send, event, payload, callback, retries = RATE_LIMIT_RETRIES) {
  send(event, payload, (reply) => {
    if (isRateLimited(reply) && retries > 0) {
      const again = () => sendRetrying(send, event, payload, callback, retries - 1);
      return void setTimeout(again, reply.error.retryAfter ?? RESUME_SPACING_MS);
    }
    callback(reply);
  });
}

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
  /** key → { request, cursor: Map | null (null until acknowledged), reply } */
  const subscriptions = new Map();
  /** room key → the `join-room` request, once acknowledged */
  const rooms = new Map();
  let inbox = null; // the notifications cursor
  let connectedBefore = false;
  // The current reconnect: subscriptions not yet resumed, refusals, gaps.
  let resubscribing = 0;
  let failed = 0;
  let gaps = [];

  socket.recovered = false;
  socket.replayed = 0;

  const notify = (event, data) => socket.listeners(event).forEach((listener) => listener(data));

  function subscribe(request, callback) {
    const key = keyOf(request);
    const known = subscriptions.get(key);
    // The app re-subscribing after a reconnect, as the seed's guide suggests:
    // the module already did, with its cursor.
    if (known && known.reply && known.request.events === request.events) return call(callback, known.reply);
    const entry = { request: { ...request }, cursor: null, reply: null };
    delete entry.request.since;
    subscriptions.set(key, entry);
    send("subscribe", request, (reply) => {
      if (reply?.ok) {
        accept(entry, reply);
      } else if (subscriptions.get(key) === entry) {
        subscriptions.delete(key);
      }
      call(callback, reply);
    });
  }

  /** Takes an acknowledgement; a replaying one waits for `subscription-resumed`. */
  function accept(entry, reply) {
    entry.canonical = canonicalKey(reply.subscription);
    entry.cursor = parseCursor(reply.cursor);
    entry.reply = reply;
    entry.resuming = Boolean(reply.replaying);
  }

  function joinRoom(request, callback) {
    send("join-room", request, (reply) => {
      if (reply?.ok) rooms.set(roomKeyOf(request), { ...request });
      call(callback, reply);
    });
  }

  socket.emit = (event, ...args) => {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
    const request = args[0] && typeof args[0] === "object" ? args[0] : null;
    if (event === "subscribe" && request) return subscribe(request, callback), socket;
    if (event === "join-room" && request) return joinRoom(request, callback), socket;
    if (event === "unsubscribe" && request) subscriptions.delete(keyOf(request));
    if (event === "leave-room" && request) rooms.delete(roomKeyOf(request));
    return callback ? send(event, ...args, callback) : send(event, ...args);
  };

  // Registered before any of the page's listeners, so cursors are current
  // whenever the page sees an event.
  for (const name of EVENTS) {
    socket.on(name, (data) => {
      if (!data || typeof data.position !== "string") return;
      if (data.replayed) return void (socket.replayed += 1);
      // A subscription being resumed takes its cursor from `subscription-resumed`.
      for (const entry of subscriptions.values()) {
        if (entry.reply && !entry.resuming) advance(entry.cursor, data.position);
      }
      if (name === "notification" && inbox) advance(inbox, data.position);
    });
  }

  socket.on("connected", (data) => {
    if (!inbox) inbox = parseCursor(data?.notificationsCursor);
  });

  // Notifications are resumed in the handshake itself, so none is missed or
  // repeated between connecting and subscribing.
  socket.on("disconnect", () => {
    if (inbox && socket.auth && typeof socket.auth === "object") {
      socket.auth = { ...socket.auth, notificationsSince: formatCursor(inbox) };
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

  socket.on("connect_error", (err) => {
    try {
      err.data = JSON.parse(err.message);
    } catch {
      // not the bridge's refusal (a transport error): leave it as it is
    }
  });

  function report() {
    if (resubscribing > 0) return;
    socket.recovered = failed === 0 && gaps.length === 0;
    notify("recovered", { recovered: socket.recovered, replayed: socket.replayed, gaps: [...gaps] });
  }

  socket.on("subscription-resumed", (data) => {
    gaps.push(...(data?.gaps ?? []).map((gap) => ({ subscription: data.subscription, ...gap })));
    const key = canonicalKey(data?.subscription);
    for (const entry of subscriptions.values()) {
      if (entry.canonical !== key || !entry.resuming) continue;
      entry.cursor = parseCursor(data.cursor);
      entry.resuming = false;
      if (entry.awaited) {
        entry.awaited = false;
        resubscribing -= 1;
      }
    }
    report();
  });

  socket.on("connect", () => {
    if (!connectedBefore) {
      connectedBefore = true;
      return;
    }
    socket.recovered = false;
    socket.replayed = 0;
    gaps = [];
    failed = 0;
    const jobs = [...rooms].map(([key, request]) => () =>
      sendRetrying(send, "join-room", request, (reply) => {
        if (!reply?.ok && !isRateLimited(reply)) rooms.delete(key);
        notify("room-rejoined", reply);
      }),
    );
    const pending = [...subscriptions.values()];
    resubscribing = pending.length;
    for (const entry of pending) {
      const since = entry.cursor ? { since: formatCursor(entry.cursor) } : {};
      entry.reply = null;
      entry.awaited = true;
      jobs.push(() =>
        sendRetrying(send, "subscribe", { ...entry.request, ...since }, (reply) => {
          if (!reply?.ok) {
            failed += 1;
          } else {
            accept(entry, reply);
            if (entry.resuming) return; // done when `subscription-resumed` arrives
          }
          entry.awaited = false;
          resubscribing -= 1;
          report();
        }),
      );
    }
    paced(jobs);
    report();
  });

  return socket;
}

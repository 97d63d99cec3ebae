// What crm-bridge-client/react keeps per socket, without React: the
// connection's state, the subscriptions and rooms the page's components
// hold (shared and reference counted), and the notifications received.
// client/react.js makes hooks of it; each part is a small store whose
// `get()` returns an immutable snapshot and whose `subscribe(listener)`
// returns its unsubscribe, as React's useSyncExternalStore wants.

/** Events a subscription delivers: event name → the payload field naming the resource's id. */
const DELIVERIES = {
  contact: { "resource-update": "id", "resource-delete": "id", "email-received": "contactId" },
  deal: { "resource-update": "id", "resource-delete": "id", "pipeline-update": "dealId" },
  "email-thread": { "email-received": "threadId" },
};
const SUBSCRIPTION_EVENTS = ["resource-update", "resource-delete", "pipeline-update", "email-received"];
/** The codes of an `error` after which the bridge disconnects a socket it will not take as it is. */
const REFUSALS = new Set(["UNAUTHORIZED", "FORBIDDEN"]);
/** Before connecting again when turned away as RATE_LIMITED without a `retryAfter`, as the seed's Error Recovery waits. */
const RATE_LIMITED_PAUSE_MS = 5000;
/** Notifications `useNotifications()` keeps, newest last: a long-lived page must not grow without end. */
export const NOTIFICATIONS_KEPT = 100;

export const INITIAL_CONNECTION = Object.freeze({
  state: "connecting",
  recovered: null,
  replayed: 0,
  gaps: [],
  error: null,
});

/** Everything the provider keeps for one socket; `close()` disconnects it. */
export function createBridge(socket) {
  const lifetime = { closed: false };
  const connection = connectionStore(socket, lifetime);
  const subscriptions = subscriptionRegistry(socket, lifetime);
  const rooms = roomRegistry(socket, lifetime);
  const notifications = notificationStore(socket);
  return {
    socket,
    connection,
    subscriptions,
    rooms,
    notifications,
    close() {
      lifetime.closed = true;
      connection.close();
      rooms.close();
      socket.disconnect();
    },
  };
}

function store(initial) {
  let snapshot = initial;
  const listeners = new Set();
  return {
    get: () => snapshot,
    set(change) {
      snapshot = { ...snapshot, ...change };
      listeners.forEach((listener) => listener());
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * The connection's state: `connecting` until the bridge's first `connected`
 * greeting (a refused socket sees socket.io's `connect`, never `connected`),
 * `connected`, `reconnecting` while socket.io reconnects (or the module,
 * after a slow consumer was cut off; or this store, after `retryAfter`,
 * when the bridge turned the connection away as RATE_LIMITED), `refused`
 * when the bridge turned the credential away (`error` says why; a new
 * token reconnects), `disconnected` when nobody will reconnect.
 */
function connectionStore(socket, lifetime) {
  const state = store(INITIAL_CONNECTION);
  let retry = null;
  socket.on("connected", () => state.set({ state: "connected", error: null }));
  socket.on("error", (error) => state.set({ error }));
  socket.on("recovered", ({ recovered, replayed, gaps }) => state.set({ recovered, replayed, gaps }));
  socket.on("disconnect", (reason) => {
    const { error } = state.get();
    const next = stateAfterDisconnect(socket, reason, error);
    state.set({ state: next });
    if (next === "reconnecting" && error?.code === "RATE_LIMITED" && !socket.active && !slowConsumer(error)) {
      retry = setTimeout(() => lifetime.closed || socket.connect(), error.retryAfter ?? RATE_LIMITED_PAUSE_MS);
    }
  });
  return { ...state, close: () => clearTimeout(retry) };
}

const slowConsumer = (error) => error?.details?.reason === "slow_consumer";

function stateAfterDisconnect(socket, reason, error) {
  if (socket.active) return "reconnecting"; // socket.io reconnects by itself
  if (reason !== "io server disconnect") return "disconnected"; // the page closed it
  if (slowConsumer(error) || error?.code === "RATE_LIMITED") return "reconnecting"; // the module, or the store
  if (REFUSALS.has(error?.code)) return "refused";
  return "disconnected";
}

/**
 * Keyed, reference-counted holdings of the bridge (subscriptions, rooms).
 * Changes are applied at the next microtask, all at once: StrictMode's
 * mount → unmount → mount, or one component unmounting as another mounts
 * with the same request, sends nothing, and components mounting together
 * send one request. `wanted(entry)` describes the request the holders need
 * (a string); `send` goes out when that changes, `release` when the last
 * holder has gone and something was sent. Once the socket is closed
 * (`lifetime.closed`), nothing is sent: the components unmounting with it
 * only let go.
 */
function holdings(lifetime, { wanted, send, release }) {
  const entries = new Map();
  let scheduled = false;

  function flush() {
    scheduled = false;
    if (lifetime.closed) return;
    for (const [key, entry] of entries) {
      if (entry.holders.size === 0) {
        entries.delete(key);
        if (entry.sent !== null) release(entry);
        continue;
      }
      const request = wanted(entry);
      if (request === entry.sent) continue;
      entry.sent = request;
      send(entry, request);
    }
  }

  return {
    entries,
    /** Adds `holder` to the entry of `key` (made by `make()` if new); returns its release. */
    hold(key, make, holder) {
      let entry = entries.get(key);
      if (!entry) entries.set(key, (entry = Object.assign(make(), { holders: new Set(), sent: null })));
      entry.holders.add(holder);
      if (!scheduled) (scheduled = true), queueMicrotask(flush);
      return () => {
        entry.holders.delete(holder);
        if (!scheduled) (scheduled = true), queueMicrotask(flush);
      };
    },
  };
}

/** A subscription's identity on the bridge: resource and id or filter (as the module keys it). */
function targetOf({ resource, id, filter }) {
  return id !== undefined ? { resource, id } : { resource, filter };
}

/** A request's identity by value: equal requests written anew each render are one. */
export function requestKey(request) {
  const { resource, id, filter, events } = request;
  const sortedFilter = filter ? Object.entries(filter).sort() : null;
  return JSON.stringify([resource, id ?? null, sortedFilter, events ? [...events].sort() : null]);
}

/**
 * The components' subscriptions, one on the bridge per resource and id or
 * filter. Holders asking for different `events` of the same one share a
 * subscription of all of them (the bridge keeps one per id or filter: a
 * second `subscribe` replaces its `events`), and each is given only the
 * events it asked for.
 */
function subscriptionRegistry(socket, lifetime) {
  const registry = holdings(lifetime, {
    wanted: (entry) => JSON.stringify(unionOfEvents(entry.holders)),
    send(entry, request) {
      const events = JSON.parse(request);
      const subscription = events ? { ...entry.target, events } : entry.target;
      socket.emit("subscribe", subscription, (reply) => {
        if (entry.sent !== request) return; // a newer request is on its way
        entry.reply = reply;
        entry.holders.forEach((holder) => holder.onReply(reply));
      });
    },
    release: (entry) => socket.emit("unsubscribe", entry.target),
  });

  for (const name of SUBSCRIPTION_EVENTS) {
    socket.on(name, (data) => {
      for (const entry of registry.entries.values()) {
        if (entry.sent === null || !delivers(entry.target, name, data)) continue;
        const action = actionOf(entry.target.resource, name, data);
        for (const holder of entry.holders) {
          if (!holder.request.events || holder.request.events.includes(action)) holder.onEvent(name, data);
        }
      }
    });
  }

  // A revoked grant ended the subscription: its holders are told as of a
  // refused one; the next change of holders asks again.
  socket.on("subscription-revoked", ({ subscription, code, message, timestamp } = {}) => {
    if (!subscription) return;
    const error = { code, message, timestamp };
    for (const entry of registry.entries.values()) {
      const { resource, id } = entry.target;
      if (entry.sent === null || resource !== subscription.resource || id !== subscription.id) continue;
      entry.sent = null;
      entry.reply = { ok: false, error };
      entry.holders.forEach((holder) => holder.onReply(entry.reply));
    }
  });

  return {
    /** `holder`: `{ request, onEvent(name, data), onReply(reply) }`; returns its release. */
    hold(holder) {
      const target = targetOf(holder.request);
      const key = JSON.stringify([target.resource, target.id ?? null, Object.entries(target.filter ?? {}).sort()]);
      const release = registry.hold(key, () => ({ target, reply: null }), holder);
      const { reply } = registry.entries.get(key);
      if (reply) holder.onReply(reply);
      return release;
    },
  };
}

/** All the holders' `events`, sorted; null (every event) when one of them wants every event. */
function unionOfEvents(holders) {
  const union = new Set();
  for (const { request } of holders) {
    if (!request.events) return null;
    request.events.forEach((event) => union.add(event));
  }
  return [...union].sort();
}

/**
 * Whether an event belongs to a subscription. Its id is matched against the
 * payload's; a filter's fields only where the payload carries them (a
 * `pipeline-update` carries `pipelineId`, a deal's `resource-update` does
 * not): two filters of one resource on a page share those events.
 */
function delivers(target, name, data) {
  const idField = DELIVERIES[target.resource]?.[name];
  if (!idField || !data) return false;
  if (name.startsWith("resource-") && data.resource !== target.resource) return false;
  if (target.id !== undefined) return data[idField] === target.id;
  return Object.entries(target.filter ?? {}).every(([field, value]) => {
    const carried = data[field] ?? data.data?.[field];
    return carried === undefined || carried === value;
  });
}

/** The `events` name an event answers to (the bridge sends actions by those names). */
function actionOf(resource, name, data) {
  if (name === "resource-delete") return "delete";
  if (name === "pipeline-update") return "stage-change";
  if (name === "email-received" && resource === "contact") return "email";
  return data.action;
}

const roomKey = ({ type, id }) => JSON.stringify([type, id]);

/**
 * The rooms the components are in, joined once each and left when the last
 * of them has gone: who else is there (`members`) and who is typing
 * (`typing`, each lapsing at its `expiresAt`), from `join-room`'s
 * acknowledgement, then `user-joined`, `user-left` and `user-typing`; after
 * a reconnect, from the module's `room-rejoined`.
 */
function roomRegistry(socket, lifetime) {
  const registry = holdings(lifetime, {
    wanted: () => "joined",
    send(entry) {
      socket.emit("join-room", entry.room, (reply) => entry.reset(reply));
    },
    release(entry) {
      entry.close();
      socket.emit("leave-room", entry.room);
    },
  });
  const roomOf = (type, id) => registry.entries.get(roomKey({ type, id }));

  socket.on("room-rejoined", (reply) => reply?.ok && roomOf(reply.room.type, reply.room.id)?.reset(reply));
  socket.on("user-joined", (data) => roomOf(data.roomType, data.roomId)?.joined(data));
  socket.on("user-left", (data) => roomOf(data.roomType, data.roomId)?.left(data));
  socket.on("user-typing", (data) => roomOf(data.roomType, data.roomId)?.typed(data));

  return {
    /** `onChange(snapshot)` gets `{ members, typing, error }` now and at each change; returns its release. */
    hold(room, onChange) {
      const key = roomKey(room);
      const release = registry.hold(key, () => roomState({ type: room.type, id: room.id }), onChange);
      const entry = registry.entries.get(key);
      onChange(entry.get());
      return release;
    },
    close() {
      registry.entries.forEach((entry) => entry.close());
    },
  };
}

function roomState(room) {
  let snapshot = { members: [], typing: [], error: null };
  const timers = new Map(); // userId + field → the timer that lapses its indicator
  const entry = {
    room,
    get: () => snapshot,
    reset(reply) {
      entry.close();
      if (!reply?.ok) return publish({ members: [], typing: [], error: reply?.error ?? null });
      const members = reply.members.map(({ userId, userName }) => ({ userId, userName }));
      const typing = (reply.typing ?? []).map(({ userId, userName, field, expiresAt }) => ({ userId, userName, field, expiresAt }));
      typing.forEach((typist) => lapse(typist, Date.parse(typist.expiresAt) - Date.now()));
      publish({ members, typing, error: null });
    },
    joined({ userId, userName }) {
      publish({ members: [...snapshot.members.filter((m) => m.userId !== userId), { userId, userName }] });
    },
    left({ userId }) {
      for (const [key, timer] of timers) if (key.startsWith(`${userId}\n`)) clearTimeout(timer), timers.delete(key);
      publish({
        members: snapshot.members.filter((m) => m.userId !== userId),
        typing: snapshot.typing.filter((t) => t.userId !== userId),
      });
    },
    /** Lasts until `expiresAt`, measured from the event's own `timestamp`: no clock skew. */
    typed(data) {
      const { userId, userName, field, expiresAt } = data;
      lapse(data, Date.parse(expiresAt) - Date.parse(data.timestamp));
      const others = snapshot.typing.filter((t) => t.userId !== userId || t.field !== field);
      publish({ typing: [...others, { userId, userName, field, expiresAt }] });
    },
    close() {
      timers.forEach((timer) => clearTimeout(timer));
      timers.clear();
    },
  };
  function publish(change) {
    snapshot = { ...snapshot, ...change };
    entry.holders?.forEach((onChange) => onChange(snapshot));
  }
  function lapse({ userId, field }, afterMs) {
    const key = `${userId}\n${field}`;
    clearTimeout(timers.get(key));
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key);
        publish({ typing: snapshot.typing.filter((t) => t.userId !== userId || t.field !== field) });
      }, Math.max(0, afterMs)),
    );
  }
  return entry;
}

/** The notifications received since the socket was made, the last NOTIFICATIONS_KEPT. */
function notificationStore(socket) {
  const notifications = store({ list: [] });
  socket.on("notification", (data) => {
    notifications.set({ list: [...notifications.get().list, data].slice(-NOTIFICATIONS_KEPT) });
  });
  return notifications;
}

// crm-bridge-client/react: a provider that opens one socket with the
// module's `io` (so subscriptions and notifications resume after every
// reconnect) and closes it on unmount, and hooks over that socket:
//
//   useConnection()                    { state, recovered, replayed, gaps, error }
//   useSubscription(request, onEvent?) { status, error }; shared, reference counted
//   useRoom({ type, id })              { members, typing, error }
//   useNotifications()                 the notifications received, newest last
//   useSocket()                        the socket itself (null until it is made)
//
// What each keeps per socket, and why, is client/react-bridge.js. React 18
// or 19 is a peer dependency; nothing here renders DOM.

import { createContext, createElement, useContext, useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from "react";
import defaultIo from "./index.js";
import { INITIAL_CONNECTION, createBridge, requestKey } from "./react-bridge.js";

/** undefined outside a provider; null until the provider's socket is made. */
const BridgeContext = createContext(undefined);

/**
 * One socket for the components beneath. `url` and `options` (io()'s) are
 * read when the socket is made: a new `url` makes a new socket. `token`
 * (shorthand for `auth: { token }`) or `auth` may change at any time: the
 * next connection uses it, and a socket the bridge refused connects again
 * with it. `io` is the connecting function (crm-bridge-client's by
 * default; tests pass one of their own).
 */
export function CrmBridgeProvider({ url, token, auth, options, io = defaultIo, children }) {
  const [bridge, setBridge] = useState(null);
  const credential = auth ?? (token === undefined ? undefined : { token });
  const latestCredential = useRef(credential);
  useLayoutEffect(() => void (latestCredential.current = credential));

  useEffect(() => {
    // Made without connecting, and connected at the next microtask: under
    // StrictMode the first of the two sockets is closed before then, so the
    // bridge sees one connection.
    const socket = io(url, { ...options, auth: latestCredential.current, autoConnect: false });
    const made = createBridge(socket);
    let closed = false;
    queueMicrotask(() => closed || socket.connect());
    setBridge(made);
    return () => {
      closed = true;
      made.close();
    };
    // `options` are read once, as io() reads them: not a dependency.
  }, [url, io]);

  const credentialKey = typeof credential === "function" ? credential : JSON.stringify(credential);
  useEffect(() => {
    if (!bridge || credential === undefined) return;
    const { socket } = bridge;
    const merge = typeof credential === "object" && socket.auth && typeof socket.auth === "object";
    socket.auth = merge ? { ...socket.auth, ...credential } : credential;
    if (bridge.connection.get().state === "refused") socket.connect();
  }, [bridge, credentialKey]);

  return createElement(BridgeContext.Provider, { value: bridge }, children);
}

function useBridge(hook) {
  const bridge = useContext(BridgeContext);
  if (bridge === undefined) throw new Error(`${hook}() must be used inside <CrmBridgeProvider>`);
  return bridge;
}

const noStore = () => () => {};

/** The provider's socket (null until it is made), for what the hooks do not cover. */
export function useSocket() {
  return useBridge("useSocket")?.socket ?? null;
}

/**
 * `{ state, recovered, replayed, gaps, error }`. `state`: `connecting`,
 * `connected` (the bridge's `connected` greeting arrived), `reconnecting`
 * (also after `retryAfter` when turned away as RATE_LIMITED), `refused`
 * (the bridge turned the credential away; `error` says why) or
 * `disconnected`. `recovered`: null until a reconnect, then
 * whether it resumed everything (`replayed` events; `gaps` what Kafka no
 * longer holds). `error`: the last `error` the bridge sent, until the
 * next `connected`.
 */
export function useConnection() {
  const bridge = useBridge("useConnection");
  return useSyncExternalStore(
    bridge?.connection.subscribe ?? noStore,
    bridge?.connection.get ?? (() => INITIAL_CONNECTION),
  );
}

/**
 * Subscribes while the component is mounted: `request` is the seed's
 * `{ resource, id | filter, events? }`, compared by value (a new object
 * each render is the same subscription). Components asking for the same
 * resource share one subscription on the bridge; the last to unmount
 * unsubscribes. `onEvent(name, data)` gets each event of it (the latest
 * `onEvent` passed; replayed ones too, with `replayed: true`). Returns
 * `{ status: "pending" | "subscribed" | "refused", error }`; a subscription
 * whose grant is revoked (`subscription-revoked`) is `refused` from then.
 */
export function useSubscription(request, onEvent) {
  const bridge = useBridge("useSubscription");
  const key = requestKey(request);
  const latestRequest = useRef(request);
  const latestOnEvent = useRef(onEvent);
  useLayoutEffect(() => {
    latestRequest.current = request;
    latestOnEvent.current = onEvent;
  });
  const [reply, setReply] = useState(null);

  useEffect(() => {
    if (!bridge) return;
    setReply(null);
    return bridge.subscriptions.hold({
      request: latestRequest.current,
      onEvent: (name, data) => latestOnEvent.current?.(name, data),
      onReply: setReply,
    });
  }, [bridge, key]);

  if (!reply) return { status: "pending", error: null };
  return reply.ok ? { status: "subscribed", error: null } : { status: "refused", error: reply.error ?? null };
}

const NOBODY = Object.freeze({ members: [], typing: [], error: null });

/**
 * Joins the room `{ type, id }` while the component is mounted (shared like
 * subscriptions) and returns `{ members, typing, error }`: who else is
 * there, who is typing (`{ userId, userName, field, expiresAt }`, gone at
 * `expiresAt`), and the refusal if `join-room` was refused. After a
 * reconnect the room is as the rejoin found it.
 */
export function useRoom({ type, id }) {
  const bridge = useBridge("useRoom");
  const [room, setRoom] = useState(NOBODY);
  useEffect(() => {
    if (!bridge) return;
    return bridge.rooms.hold({ type, id }, setRoom);
  }, [bridge, type, id]);
  return room;
}

const NO_NOTIFICATIONS = Object.freeze({ list: Object.freeze([]) });

/** The user's notifications received since the socket was made, newest last (the last NOTIFICATIONS_KEPT). */
export function useNotifications() {
  const bridge = useBridge("useNotifications");
  return useSyncExternalStore(
    bridge?.notifications.subscribe ?? noStore,
    bridge?.notifications.get ?? (() => NO_NOTIFICATIONS),
  ).list;
}

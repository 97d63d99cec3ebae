// The connection to the bridge, done the way the API is meant to be used:
// socket.io-client wrapped by the bridge's recovery module (cursors, resume
// with `since`, rooms rejoined), every request acknowledged and checked,
// and the connection's state always on screen in plain words.

import { io as plainIo } from "./vendor/socket.io.esm.min.js";
import { withRecovery } from "/client/crm-bridge-client.js";
import { describe, needsSignIn } from "./errors.js";

const io = withRecovery(plainIo);
/** Before connecting again after the bridge closed the connection on purpose. */
const SERVER_DISCONNECT_PAUSE_MS = 3000;

/**
 * Connects as `session` and shows the state in `badge`. `onSignIn(message)`
 * runs when the credential is refused or lapses; `onProblem(message)` for
 * any other refusal the page should mention.
 */
export function connect(session, badge, { onSignIn, onProblem }) {
  const show = (state, text) => {
    badge.dataset.state = state;
    badge.textContent = text;
  };
  show("connecting", "Connecting…");
  const socket = io(location.origin, { auth: { token: session.token } });
  let everConnected = false;
  let slowConsumer = false; // cut off as too slow: the module reconnects by itself
  // The bridge's `error` before it disconnects (a refused handshake, a
  // flood): whether, and after how long, to connect again.
  let told = null;
  // `connected`, not `connect`, says the bridge accepted the handshake: a
  // refused one gets `connect`, its `error`, then "io server disconnect".
  let greeted = false;

  socket.on("connect", () => {
    greeted = false;
  });
  socket.on("connected", () => {
    greeted = true;
    slowConsumer = false;
    told = null;
    // A reconnect: the module is resubscribing from its cursors.
    show(everConnected ? "recovering" : "connecting", everConnected ? "Reconnected — catching up…" : "Subscribing…");
    everConnected = true;
  });
  socket.on("recovered", ({ recovered, replayed, gaps }) => {
    const missed = `${replayed} missed event${replayed === 1 ? "" : "s"} replayed`;
    if (recovered) show("recovered", `Recovered — ${missed}`);
    else show("stale", `Reconnected with gaps (${gaps.length}) — ${missed}; reload for a full board`);
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return;
    if (reason !== "io server disconnect") return show("reconnecting", "Reconnecting…");
    // Closed by the bridge (refused, a flood, a replay it could not serve):
    // socket.io does not reconnect by itself after that. Not with a refused
    // credential: signing in again opens a new connection.
    if (slowConsumer || needsSignIn(told)) return;
    const pause = told?.retryAfter ?? SERVER_DISCONNECT_PAUSE_MS;
    if (!told) show("reconnecting", "Disconnected by the bridge — reconnecting shortly…");
    told = null;
    setTimeout(() => socket.connect(), pause);
  });
  socket.io.on("reconnect_attempt", (attempt) => show("reconnecting", `Reconnecting… (attempt ${attempt})`));

  socket.on("error", (error) => {
    told = error;
    if (needsSignIn(error)) {
      show("error", describe(error));
      return onSignIn(describe(error));
    }
    slowConsumer = error?.details?.reason === "slow_consumer";
    if (slowConsumer) return show("recovering", describe(error));
    // Refused at the handshake (a connection limit): the disconnect follows.
    if (!greeted) return show("error", describe(error));
    onProblem(describe(error));
  });

  return {
    socket,
    /**
     * Emits `event` and resolves with its acknowledgement, or rejects with
     * the refusal (which the bridge also sends as `error`: shown above).
     */
    request(event, payload) {
      return new Promise((resolve, reject) => {
        socket.emit(event, payload, (reply) => (reply?.ok ? resolve(reply) : reject(reply?.error)));
      });
    },
    /** The page's first subscriptions and rooms are acknowledged: it is live. */
    ready() {
      if (badge.dataset.state === "connecting") show("connected", "Connected");
    },
    close() {
      socket.disconnect();
    },
  };
}

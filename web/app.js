// The dashboard's entry: sign in, connect, and route the bridge's events to
// the parts of the page that own them (board, rooms, deal panel, inbox).
// The operations view needs no sign-in. Routes are URL fragments: `#ops`,
// `#deal/<id>`, and anything else for the board.

import { $ } from "./dom.js";
import { currentSession, forget, signIn } from "./session.js";
import { connect } from "./live.js";
import { createBoard } from "./board.js";
import { RoomView } from "./presence.js";
import { createDealPanel } from "./deal.js";
import { createInbox } from "./inbox.js";
import { createOps } from "./ops.js";

const ops = createOps($("#ops-view"));
const inbox = createInbox($("#emails"), $("#toasts"));
/** The signed-in page: `{ live, panel, rooms }`, or null. */
let current = null;

function route() {
  const view = location.hash === "#ops" ? "ops" : "board";
  $("#board-view").hidden = view !== "board";
  $("#ops-view").hidden = view !== "ops";
  for (const tab of document.querySelectorAll(".tabs a")) {
    tab.setAttribute("aria-current", String(tab.dataset.view === view));
  }
  view === "ops" ? ops.start() : ops.stop();
  const deal = /^#deal\/(.+)$/.exec(location.hash);
  if (current) deal ? current.panel.show(decodeURIComponent(deal[1])) : current.panel.hide();
}

async function start(notice = "") {
  $("#workspace").hidden = true;
  const session = currentSession() ?? (await signIn($("#sign-in"), notice));
  open(session);
}

function open(session) {
  $("#me").textContent = `${session.user.name} · ${session.org}`;
  $("#sign-out").hidden = false;
  $("#pipeline-name").textContent = session.pipeline;
  $("#board").replaceChildren();
  $("#emails").replaceChildren();
  $("#workspace").hidden = false;

  let live;
  try {
    live = connect(session, $("#connection"), {
      onSignIn: (message) => {
        close();
        forget();
        start(message);
      },
      onProblem: inbox.problem,
    });
  } catch (error) {
    $("#connection").dataset.state = "error";
    $("#connection").textContent = error.message;
    return;
  }
  const rooms = new Set();
  const board = createBoard($("#board"), { onOpen: (id) => (location.hash = `#deal/${encodeURIComponent(id)}`) });
  const panel = createDealPanel($("#deal"), { live, board, rooms });
  const pipeline = new RoomView({ type: "pipeline", id: session.pipeline }, { avatars: $("#presence"), typing: $("#pipeline-typing") });
  rooms.add(pipeline);

  const { socket } = live;
  socket.on("pipeline-update", (data) => {
    board.moved(data);
    panel.changed(data.dealId);
  });
  socket.on("resource-update", (data) => {
    board.updated(data);
    panel.changed(data.id);
  });
  socket.on("resource-delete", board.deleted);
  socket.on("email-received", inbox.email);
  socket.on("notification", inbox.notification);
  const room = (type, id) => [...rooms].find((view) => view.is(type, id));
  socket.on("user-joined", (data) => room(data.roomType, data.roomId)?.joined(data));
  socket.on("user-left", (data) => room(data.roomType, data.roomId)?.left(data));
  socket.on("user-typing", (data) => room(data.roomType, data.roomId)?.typed(data));
  // Disconnected, the page cannot know who is there; after a reconnect the
  // module rejoins every room, and each acknowledgement says who is there now.
  socket.on("disconnect", () => rooms.forEach((view) => view.reset({})));
  socket.on("room-rejoined", (ack) => ack?.ok && room(ack.room.type, ack.room.id)?.reset(ack));

  // Subscriptions resume gap-free after a reconnect (the module keeps their
  // cursors); the pipeline room adds presence and typing.
  Promise.allSettled([
    live.request("subscribe", { resource: "deal", filter: { pipelineId: session.pipeline } }),
    live.request("subscribe", { resource: "email-thread", filter: { organizationId: session.org } }),
    live.request("join-room", pipeline.room).then((ack) => pipeline.reset(ack)),
  ]).then(() => live.ready());

  current = { live, panel, rooms };
  route();
}

function close() {
  if (!current) return;
  current.panel.hide();
  current.rooms.forEach((view) => view.close());
  current.live.close();
  current = null;
  $("#presence").replaceChildren();
  $("#pipeline-typing").textContent = "";
  $("#sign-out").hidden = true;
  $("#me").textContent = "";
}

$("#sign-out").addEventListener("click", () => {
  close();
  forget();
  $("#connection").dataset.state = "offline";
  $("#connection").textContent = "Signed out";
  start();
});
window.addEventListener("hashchange", route);
route();
start();

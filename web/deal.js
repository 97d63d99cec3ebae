// A deal's panel: its details, who else has it open (the deal's own
// collaboration room, joined while the panel is open) and its notes, where
// typing is shared as `typing { roomType: "deal", roomId, field: "notes" }`
// — at most once a second while keys are pressed, which renews the others'
// indicator well within its lifetime. The notes themselves stay in this
// page: the bridge carries events, not documents.

import { $, h } from "./dom.js";
import { RoomView } from "./presence.js";

/** Under the bridge's typing throttle (1 s) and well under an indicator's life (5 s). */
const TYPING_EVERY_MS = 1000;

export function createDealPanel(panel, { live, board, rooms }) {
  const drafts = new Map(); // deal id → notes typed here
  let open = null; // { id, view }

  function details(id) {
    const deal = board.get(id);
    $(".deal-title", panel).textContent = deal?.title ?? id;
    $(".deal-facts", panel).textContent = deal
      ? [deal.stage, deal.ownerName ?? deal.owner].filter(Boolean).join(" · ")
      : "Not on this board";
  }

  function show(id) {
    if (open?.id === id) return;
    if (open) hide();
    const avatars = h("span.avatars", { "aria-label": "Also viewing this deal" });
    const typing = h("p.typing", { "aria-live": "polite" });
    const notes = h("textarea", { name: "notes", rows: 6, placeholder: "Notes on this deal (shared: others see you typing)" });
    notes.value = drafts.get(id) ?? "";
    let lastTyping = 0;
    notes.addEventListener("input", () => {
      drafts.set(id, notes.value);
      const now = Date.now();
      if (now - lastTyping < TYPING_EVERY_MS) return;
      lastTyping = now;
      live.request("typing", { roomType: "deal", roomId: id, field: "notes" }).catch(() => {});
    });
    panel.replaceChildren(
      h("header", {},
        h("div", {}, h("h2.deal-title"), h("p.deal-facts")),
        h("button.close", { type: "button", "aria-label": "Close", onclick: () => (location.hash = "") }, "×")),
      h("div.here", {}, h("span", {}, "Also here"), avatars),
      h("label", {}, "Notes", notes),
      typing,
    );
    const view = new RoomView({ type: "deal", id }, { avatars, typing });
    rooms.add(view);
    open = { id, view };
    details(id);
    panel.hidden = false;
    live.request("join-room", view.room).then((ack) => view.reset(ack), () => {});
  }

  function hide() {
    if (!open) return;
    live.request("leave-room", open.view.room).catch(() => {});
    rooms.delete(open.view);
    open.view.close();
    open = null;
    panel.hidden = true;
  }

  return {
    show,
    hide,
    /** The board changed `id`: redraw its details if it is open. */
    changed(id) {
      if (open?.id === id) details(id);
    },
  };
}

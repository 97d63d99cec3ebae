// The pipeline board: a column per stage and a card per deal, learned from
// events as they arrive (there is no REST backend): `pipeline-update` moves
// a card (with a brief highlight), `resource-update` fills in its title,
// value and owner, `resource-delete` removes it. A stage the board does not
// know gets a column of its own.

import { avatar, h } from "./dom.js";

/** The demo producer's stages, in pipeline order; closed ones stay last. */
const STAGES = ["lead", "qualified", "proposal", "negotiation", "closed-won", "closed-lost"];
const UNKNOWN = "unknown";

const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", notation: "compact" });

/** Restarts a card's highlight: `moved` or `touched` (a card that moves twice flashes twice). */
function highlight(node, kind) {
  node.classList.remove("moved", "touched");
  void node.offsetWidth; // a reflow, so the same animation starts again
  node.classList.add(kind);
}

const label = (stage) => (stage === UNKNOWN ? "Stage not seen yet" : stage.replace(/[-_]/g, " "));

export function createBoard(root, { onOpen }) {
  const deals = new Map(); // id → { id, title, value, owner, ownerName, stage, node }
  const columns = new Map(); // stage → { node, list, count, total }
  STAGES.forEach(column);

  function column(stage) {
    if (columns.has(stage)) return columns.get(stage);
    const count = h("span.count", {}, "0");
    const total = h("span.total");
    const list = h("div.cards");
    const node = h("section.column", { dataset: { stage }, "aria-label": label(stage) },
      h("header", {}, h("h2", {}, label(stage)), count, total), list);
    // New stages go before the closed ones, so won/lost stay at the end.
    const closed = [...columns.values()].find((c) => c.node.dataset.stage.startsWith("closed"));
    root.insertBefore(node, STAGES.includes(stage) ? null : closed?.node ?? null);
    const entry = { node, list, count, total };
    columns.set(stage, entry);
    return entry;
  }

  function deal(id) {
    if (!deals.has(id)) deals.set(id, { id, stage: UNKNOWN, node: h("button.card", { type: "button", dataset: { deal: id }, onclick: () => onOpen(id) }) });
    return deals.get(id);
  }

  function render(d) {
    const parts = [
      h("span.title", {}, d.title ?? d.id),
      h("span.value", {}, d.value === undefined ? "—" : money.format(d.value)),
      owner(d),
    ];
    d.node.replaceChildren(...parts.filter(Boolean));
  }

  /** The owner's avatar and first name (the full name on hover). */
  function owner(d) {
    const name = d.ownerName ?? d.owner;
    if (!name) return null;
    return h("span.owner", { title: name }, avatar(d.owner ?? name, name), name.split(" ")[0]);
  }

  function place(d) {
    const target = column(d.stage);
    if (d.node.parentElement !== target.list) target.list.prepend(d.node);
    tally();
  }

  function tally() {
    for (const [stage, c] of columns) {
      const inStage = [...deals.values()].filter((d) => d.stage === stage);
      // The column of deals whose stage is not known yet goes once they are.
      if (stage === UNKNOWN && inStage.length === 0) {
        c.node.remove();
        columns.delete(stage);
        continue;
      }
      c.count.textContent = String(inStage.length);
      const sum = inStage.reduce((total, d) => total + (d.value ?? 0), 0);
      c.total.textContent = sum ? compact.format(sum) : "";
    }
  }

  return {
    /** `pipeline-update`: the deal moves to `newStage`. */
    moved({ dealId, newStage }) {
      const d = deal(dealId);
      d.stage = newStage || UNKNOWN;
      render(d);
      place(d);
      highlight(d.node, "moved");
    },
    /** `resource-update` of a deal: take the fields the board shows. */
    updated({ resource, id, data }) {
      if (resource !== "deal") return;
      const d = deal(id);
      const changes = data ?? {};
      if (typeof changes.title === "string") d.title = changes.title;
      const value = changes.value ?? changes.amount;
      if (typeof value === "number") d.value = value;
      if (typeof changes.owner === "string") d.owner = changes.owner;
      if (typeof changes.ownerName === "string") d.ownerName = changes.ownerName;
      if (typeof changes.stage === "string") d.stage = changes.stage;
      render(d);
      place(d);
      highlight(d.node, "touched");
    },
    /** `resource-delete` of a deal. */
    deleted({ resource, id }) {
      if (resource !== "deal" || !deals.has(id)) return;
      deals.get(id).node.remove();
      deals.delete(id);
      tally();
    },
    get(id) {
      return deals.get(id);
    },
  };
}

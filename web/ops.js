// The operations view: the bridge's own counters (`GET /stats`, the same
// numbers as `/metrics`), polled once a second while the view is open and
// drawn as small live charts: connected clients, events per second in (records
// consumed) and out (deliveries), drops, delivery latency, and the consumer
// lag of every partition. Rates are differences between two polls.

import { $, h } from "./dom.js";
import { chart, draw } from "./charts.js";

const EVERY_MS = 1000;
/** A minute of samples per chart. */
const KEPT = 60;

const sum = (byReason) => Object.values(byReason ?? {}).reduce((a, b) => a + b, 0);
const rate = (now, before, seconds) => Math.max(0, (now - before) / seconds);
const round = (v) => (v >= 10 ? Math.round(v) : Math.round(v * 10) / 10);

function tile(metric, title, legend = null) {
  return h("section.tile", { dataset: { metric } },
    h("h3", {}, title), h("p.now", {}, "…"), chart(title), h("p.detail", {}, legend ?? ""));
}

export function createOps(root) {
  const history = { clients: [], in: [], out: [], drops: [], latency: [], lag: new Map() };
  const lagGrid = h("div.lag-grid");
  const status = h("p.ops-status", { role: "status" }, "Waiting for the first sample…");
  root.replaceChildren(
    h("div.ops-head", {}, h("h2", {}, "Operations"), status),
    h("div.tiles", {},
      tile("clients", "Connected clients"),
      tile("events", "Events per second", h("span", {}, h("i.key.series-0"), "in ", h("i.key.series-1"), "out")),
      tile("drops", "Drops per second"),
      tile("latency", "Delivery latency (avg)")),
    h("h3.lag-title", {}, "Consumer lag per partition (records)"),
    lagGrid,
  );
  let previous = null;
  let timer = null;

  function push(series, value) {
    series.push(value);
    if (series.length > KEPT) series.shift();
  }

  function show(metric, now, series, detail) {
    const node = $(`[data-metric="${metric}"]`, root);
    $(".now", node).textContent = now;
    draw($("svg", node), series, KEPT);
    if (detail !== undefined) $(".detail", node).textContent = detail;
  }

  function sample(stats, at) {
    if (previous) {
      const seconds = (at - previous.at) / 1000;
      const before = previous.stats;
      push(history.clients, stats.clientsConnected);
      push(history.in, rate(stats.recordsConsumed, before.recordsConsumed, seconds));
      push(history.out, rate(stats.deliveries, before.deliveries, seconds));
      push(history.drops, rate(sum(stats.dropped), sum(before.dropped), seconds));
      const count = stats.deliveryLatency.count - before.deliveryLatency.count;
      // A second without deliveries keeps the last average: no delivery is not zero latency.
      const latency = count > 0
        ? ((stats.deliveryLatency.sumSeconds - before.deliveryLatency.sumSeconds) / count) * 1000
        : history.latency.at(-1);
      if (latency !== undefined) push(history.latency, latency);
      show("clients", String(stats.clientsConnected), [history.clients],
        `${stats.subscriptions} subscriptions · ${stats.roomSeats} room seats`);
      show("events", `${round(history.in.at(-1))} in · ${round(history.out.at(-1))} out`, [history.in, history.out]);
      const reasons = Object.entries(stats.dropped ?? {}).map(([reason, n]) => `${reason} ${n}`).join(" · ");
      show("drops", String(round(history.drops.at(-1))), [history.drops], reasons ? `since start: ${reasons}` : "none since start");
      show("latency", latency === undefined ? "—" : `${round(latency)} ms`, [history.latency], "record timestamp → socket");
      lag(stats.consumerLag ?? []);
    }
    status.textContent = stats.ready ? "Ready" : "Not ready (see /readyz)";
    status.dataset.state = stats.ready ? "ready" : "not-ready";
    previous = { stats, at };
  }

  function lag(partitions) {
    for (const { topic, partition, records } of partitions) {
      const key = `${topic}/${partition}`;
      if (!history.lag.has(key)) {
        history.lag.set(key, []);
        lagGrid.append(h("section.lag", { dataset: { partition: key } }, h("span.name", {}, key), h("span.now"), chart(`lag of ${key}`)));
        [...lagGrid.children].sort((a, b) => a.dataset.partition.localeCompare(b.dataset.partition, undefined, { numeric: true }))
          .forEach((node) => lagGrid.append(node));
      }
      const series = history.lag.get(key);
      push(series, records);
      const node = lagGrid.querySelector(`[data-partition="${CSS.escape(key)}"]`);
      node.querySelector(".now").textContent = String(records);
      draw(node.querySelector("svg"), [series], KEPT);
    }
  }

  async function poll() {
    try {
      const response = await fetch("/stats", { cache: "no-store" });
      if (!response.ok) throw new Error(String(response.status));
      sample(await response.json(), Date.now());
    } catch {
      status.textContent = "The bridge is not answering /stats";
      status.dataset.state = "not-ready";
    }
  }

  return {
    start() {
      if (timer) return;
      poll();
      timer = setInterval(poll, EVERY_MS);
    },
    stop() {
      clearInterval(timer);
      timer = null;
      previous = null;
    },
  };
}

// crm-bridge-client/react in Debian's headless Chromium against the real
// bridge, with the seed's React hook and usage example in the same page:
// the scenario of tests/react_browser.rs. Usage: node react.mjs URL
//
// The page (client/test/browser/page.jsx, bundled here with esbuild) is
// served at the bridge's origin by Playwright's routing, so it connects as
// a page of the bridge's own would. The Rust test owns the broker, the
// bridge and the network in between; this script asks it for what only it
// can do, one JSON line on stdout each (`{"ask": "stage", ...}`), and waits
// for its `{"done": n}` on stdin. Every check waits for a condition.

import { chromium } from "playwright-core";
import { ask, log } from "./scenario.mjs";
import { bundlePage } from "../../client/test/browser/bundle.mjs";

const [url] = process.argv.slice(2);
const WAIT_MS = 30_000;
const ORG = "org-acme";
const PIPELINE = "pipeline_acme_sales";
const CONTACT = "contact_ana";

/** Waits for `predicate(arg)` in the page; on timeout says what the page showed. */
async function until(page, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: WAIT_MS, polling: 50 });
  } catch (error) {
    const shown = await page.evaluate(() => ({ page: document.body.innerText, seed: window.seed?.contact }));
    throw new Error(`timed out waiting for ${what}; the page showed ${JSON.stringify(shown)}`, { cause: error });
  }
}

const connection = (page, state, extra = {}) =>
  until(page, `connection ${state} ${JSON.stringify(extra)}`, ([state, extra]) => {
    const node = document.querySelector("#connection");
    return node?.dataset.state === state && Object.entries(extra).every(([key, value]) => node.dataset[key] === value);
  }, [state, extra]);

/** Both components sharing the subscription list `moves`, in order. */
const bothShow = (page, moves) =>
  until(page, `board and ticker showing ${moves}`, (moves) =>
    ["#board", "#ticker"].every((list) =>
      JSON.stringify([...document.querySelectorAll(`${list} li`)].map((li) => li.textContent)) === JSON.stringify(moves)), moves);

// ---- the scenario ----
const { token } = await fetch(`${url}/dev/token`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ user: "user_alice", name: "Alice Martin", org: ORG }),
}).then((r) => r.json());
const script = await bundlePage();
log(`page bundled (${script.length} bytes)`);

// A page Playwright serves has no address of its own, so Chromium counts it
// public, and its WebSocket to 127.0.0.1 a local network access it blocks
// (polling, same-origin, still works): what a page the bridge's origin
// served would never meet.
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-features=LocalNetworkAccessChecks"],
});
try {
  const context = await browser.newContext();
  await context.route(`${url}/react-scenario/**`, (route) => {
    const page = route.request().url().endsWith("/page.js")
      ? { contentType: "text/javascript", body: script }
      : { contentType: "text/html", body: '<!doctype html><div id="root"></div><script type="module" src="page.js"></script>' };
    return route.fulfill({ status: 200, ...page });
  });
  await context.addInitScript((scenario) => {
    window.scenario = scenario;
    window.seed = { url: scenario.url, token: scenario.token };
  }, { url, token, pipeline: PIPELINE, contact: CONTACT });
  const page = await context.newPage();
  page.on("pageerror", (error) => log(`page error: ${error.message}`));
  page.on("console", (message) => message.type() === "error" && log(`console: ${message.text()}`));
  await page.goto(`${url}/react-scenario/`);
  await connection(page, "connected");
  await until(page, "both subscribed", () =>
    ["#board", "#ticker"].every((list) => document.querySelector(list)?.dataset.status === "subscribed"));
  log("connected and subscribed through the hooks");

  // Live: stage changes reach both components; a notification the inbox.
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_1", from: "lead", to: "qualified" });
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_2", from: "lead", to: "proposal" });
  await bothShow(page, ["deal_acme_1:qualified", "deal_acme_2:proposal"]);
  await ask({ ask: "notification", org: ORG, user: "user_alice", title: "Bob mentioned you" });
  await until(page, "the notification", () => document.querySelector("#inbox")?.innerText.includes("Bob mentioned you"));
  log("live events reached both components and the inbox");

  // The seed's usage example: a contact update reaches its setContact. Its
  // hook subscribes once connected (its own `connected` state), so the
  // update is produced until one arrives: the first may precede that.
  for (let attempt = 1; !(await page.evaluate(() => window.seed.contact?.email)); attempt += 1) {
    if (attempt > 50) throw new Error("the seed's ContactDetails never received its contact's update");
    await ask({ ask: "contact", org: ORG, contact: CONTACT, changes: { email: "ana@example.com" } });
    await page.waitForFunction(() => window.seed.contact?.email, null, { timeout: 500, polling: 50 }).catch(() => {});
  }
  log("the seed's React hook and usage example received a contact update");

  // The network drops; deals move meanwhile; it comes back: the provider
  // says so, and both components get what they missed, once.
  await ask({ ask: "network-down" });
  await connection(page, "reconnecting");
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_1", from: "qualified", to: "negotiation" });
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_3", from: "lead", to: "closed-won" });
  await ask({ ask: "network-up" });
  await connection(page, "connected", { recovered: "true", replayed: "2" });
  await bothShow(page, ["deal_acme_1:qualified", "deal_acme_2:proposal",
    "deal_acme_1:negotiation:replayed", "deal_acme_3:closed-won:replayed"]);
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_2", from: "proposal", to: "closed-lost" });
  await bothShow(page, ["deal_acme_1:qualified", "deal_acme_2:proposal",
    "deal_acme_1:negotiation:replayed", "deal_acme_3:closed-won:replayed", "deal_acme_2:closed-lost"]);
  log("a reconnect recovered the missed events in both components, then live again");
  console.log(JSON.stringify({ passed: true }));
} finally {
  await browser.close();
}
process.exit(0);

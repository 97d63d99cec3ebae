// The dashboard in Debian's headless Chromium, driven by playwright-core:
// the scenario of tests/dashboard.rs. Usage: node dashboard.mjs URL ARTIFACT_DIR
//
// The Rust test owns the broker, the bridge and the network in between; this
// script asks it for what only it can do, one JSON line on stdout each
// (`{"ask": "stage", ...}`), and waits for its `{"done": n}` on stdin. Every
// check waits for a condition (never for a fixed time) and fails with what
// the page showed instead.

import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import { ask, log } from "./scenario.mjs";

const [url, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const WAIT_MS = 30_000;
const ORG = "org-acme";
const PIPELINE = "pipeline_acme_sales";

// ---- the page ----
async function signIn(browser, user, viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on("pageerror", (error) => log(`${user} page error: ${error.message}`));
  page.on("console", (message) => message.type() === "error" && log(`${user} console: ${message.text()}`));
  await page.goto(url);
  await page.locator(`button[data-user="${user}"]`).click({ timeout: WAIT_MS });
  await badge(page, "connected", "Connected");
  return page;
}

/** Waits until the connection badge is in `state` and reads `text`. */
async function badge(page, state, text) {
  await until(page, `badge ${state} "${text}"`, ([state, text]) => {
    const node = document.querySelector("#connection");
    return node.dataset.state === state && node.textContent.includes(text);
  }, [state, text]);
}

/** Waits for `predicate(arg)` in the page; on timeout says what the page showed. */
async function until(page, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: WAIT_MS, polling: 50 });
  } catch (error) {
    const shown = await page.evaluate(() => ({
      badge: document.querySelector("#connection")?.textContent,
      columns: [...document.querySelectorAll(".column")].map((c) =>
        `${c.dataset.stage}: ${[...c.querySelectorAll(".card")].map((d) => d.dataset.deal).join(",")}`),
      presence: document.querySelector("#presence")?.innerText,
      deal: document.querySelector("#deal")?.innerText,
      toasts: document.querySelector("#toasts")?.innerText,
    }));
    throw new Error(`timed out waiting for ${what}; the page showed ${JSON.stringify(shown)}`, { cause: error });
  }
}

const inColumn = (page, deal, stage) =>
  until(page, `${deal} in ${stage}`, ([deal, stage]) =>
    Boolean(document.querySelector(`.column[data-stage="${stage}"] .card[data-deal="${deal}"]`)), [deal, stage]);

const shot = (page, name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });

// ---- the scenario ----
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const laptop = { width: 1280, height: 800 };
  const alice = await signIn(browser, "user_alice", laptop);
  const bob = await signIn(browser, "user_bob", { width: 390, height: 844 }); // a phone
  const dave = await signIn(browser, "user_dave", laptop); // org-globex
  log("three users signed in");

  // Presence: Alice and Bob see each other on the pipeline; Dave is elsewhere.
  await until(alice, "Alice seeing Bob", () => Boolean(document.querySelector('#presence [data-user="user_bob"]')));
  await until(bob, "Bob seeing Alice", () => Boolean(document.querySelector('#presence [data-user="user_alice"]')));

  // Deals arrive, then one moves: both boards show it in its new column.
  const deals = [
    ["deal_acme_1", "Northwind renewal", 120000, "user_alice", "Alice Martin", "lead"],
    ["deal_acme_2", "Contoso expansion", 48000, "user_bob", "Bob Chen", "qualified"],
    ["deal_acme_3", "Fabrikam pilot", 9500, "user_carol", "Carol Diaz", "proposal"],
  ];
  for (const [deal, title, value, owner, ownerName, stage] of deals) {
    await ask({ ask: "deal", org: ORG, pipeline: PIPELINE, deal, action: "create", changes: { title, value, owner, ownerName, stage } });
  }
  for (const page of [alice, bob]) {
    for (const [deal, , , , , stage] of deals) await inColumn(page, deal, stage);
  }
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_1", from: "lead", to: "proposal" });
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_2", from: "qualified", to: "closed-won" });
  for (const page of [alice, bob]) {
    await inColumn(page, "deal_acme_1", "proposal");
    await inColumn(page, "deal_acme_2", "closed-won");
  }
  // A stage the board has never heard of gets a column of its own.
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_3", from: "proposal", to: "legal-review" });
  await inColumn(alice, "deal_acme_3", "legal-review");
  log("deals moved on both boards");

  // Email for the organisation; a notification for Bob only.
  await ask({ ask: "email", org: ORG, thread: "thread_1", subject: "Pricing question" });
  await ask({ ask: "notification", org: ORG, user: "user_bob", title: "Alice mentioned you" });
  for (const page of [alice, bob]) {
    await until(page, "the email", () => document.querySelector("#emails")?.innerText.includes("Pricing question"));
  }
  await until(bob, "Bob's notification", () => document.querySelector("#toasts")?.innerText.includes("Alice mentioned you"));
  await shot(alice, "board-laptop");
  await shot(bob, "board-phone");

  // Typing: both open the same deal; Alice types in its notes, Bob sees it.
  await alice.evaluate(() => (location.hash = "#deal/deal_acme_1"));
  await bob.evaluate(() => (location.hash = "#deal/deal_acme_1"));
  await until(bob, "Bob seeing Alice on the deal", () => Boolean(document.querySelector('#deal .avatars [data-user="user_alice"]')));
  await until(alice, "Alice seeing Bob on the deal", () => Boolean(document.querySelector('#deal .avatars [data-user="user_bob"]')));
  await alice.locator('#deal textarea[name="notes"]').pressSequentially("Call back on Tuesday", { delay: 40 });
  await until(bob, "Alice typing, on Bob's page", () => document.querySelector("#deal .typing")?.textContent === "Alice Martin is typing…");
  await shot(bob, "deal-typing-phone");
  await shot(alice, "deal-panel-laptop");
  log("presence and typing crossed between Alice and Bob");

  // Dave (org-globex) opens a deal of the same id in his organisation, and
  // gets an event of his own: by then he would have had Acme's, and has none.
  await dave.evaluate(() => (location.hash = "#deal/deal_acme_1"));
  await ask({ ask: "stage", org: "org-globex", pipeline: "pipeline_globex_enterprise", deal: "deal_globex_1", from: "lead", to: "qualified" });
  await inColumn(dave, "deal_globex_1", "qualified");
  const leaked = await dave.evaluate(() => ({
    cards: [...document.querySelectorAll(".card")].map((c) => c.dataset.deal).filter((id) => !id.startsWith("deal_globex")),
    avatars: [...document.querySelectorAll("[data-user]")].map((a) => a.dataset.user).filter((u) => u.startsWith("user_") && !["user_dave", "user_erin"].includes(u)),
    typing: [...document.querySelectorAll(".typing")].map((t) => t.textContent).join(""),
    emails: document.querySelector("#emails").children.length,
    toasts: document.querySelector("#toasts").children.length,
  }));
  const none = { cards: [], avatars: [], typing: "", emails: 0, toasts: 0 };
  if (JSON.stringify(leaked) !== JSON.stringify(none)) throw new Error(`Dave saw Acme's activity: ${JSON.stringify(leaked)}`);
  const aliceSawDave = await alice.evaluate(() => Boolean(document.querySelector('[data-user="user_dave"]')));
  if (aliceSawDave) throw new Error("Alice saw Dave of another organisation");
  await shot(dave, "board-other-org");
  log("Dave saw nothing of Acme");

  // A session that lapses while the page is open: it says so in plain words
  // and offers the sign-in step again.
  const minted = await fetch(`${url}/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user: "user_erin", name: "Erin Walsh", org: "org-globex", ttlSeconds: 3 }),
  }).then((r) => r.json());
  const lapsing = await browser.newContext({ viewport: laptop });
  await lapsing.addInitScript((session) => sessionStorage.setItem("crm-bridge.session", JSON.stringify(session)), {
    token: minted.token, user: { id: "user_erin", name: "Erin Walsh" }, org: "org-globex", pipeline: "pipeline_globex_enterprise",
  });
  const erin = await lapsing.newPage();
  await erin.goto(url);
  await badge(erin, "error", "Your session expired — sign in again.");
  await until(erin, "the sign-in step again", () =>
    document.querySelector("#sign-in .notice")?.textContent === "Your session expired — sign in again." &&
    Boolean(document.querySelector('#sign-in button[data-user="user_erin"]')));
  await shot(erin, "session-expired");
  await lapsing.close();
  log("a lapsed session asks to sign in again");

  // A stored session the bridge refuses at the handshake: its `error`
  // reaches the page, which asks to sign in instead of reconnecting.
  const refused = await browser.newContext({ viewport: laptop });
  await refused.addInitScript((session) => sessionStorage.setItem("crm-bridge.session", JSON.stringify(session)), {
    token: "not-a-jwt", user: { id: "user_erin", name: "Erin Walsh" }, org: "org-globex", pipeline: "pipeline_globex_enterprise",
  });
  const stale = await refused.newPage();
  await stale.goto(url);
  await until(stale, "the sign-in step after a refused handshake", () =>
    document.querySelector("#sign-in .notice")?.textContent === "Your session expired — sign in again.");
  await refused.close();
  log("a refused handshake asks to sign in again");

  // The network drops; deals move meanwhile; it comes back: the pages say
  // so, then recover what they missed from Kafka.
  await alice.evaluate(() => (location.hash = ""));
  await ask({ ask: "network-down" });
  await badge(alice, "reconnecting", "Reconnecting");
  await badge(bob, "reconnecting", "Reconnecting");
  await shot(alice, "reconnecting");
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_1", from: "proposal", to: "negotiation" });
  await ask({ ask: "stage", org: ORG, pipeline: PIPELINE, deal: "deal_acme_2", from: "closed-won", to: "closed-lost" });
  await ask({ ask: "email", org: ORG, thread: "thread_2", subject: "Contract draft" });
  await ask({ ask: "network-up" });
  for (const page of [alice, bob]) {
    await badge(page, "recovered", "Recovered — 3 missed events replayed");
    await inColumn(page, "deal_acme_1", "negotiation");
    await inColumn(page, "deal_acme_2", "closed-lost");
    await until(page, "the missed email", () => document.querySelector("#emails")?.innerText.includes("Contract draft"));
  }
  await until(alice, "Bob back on the pipeline", () => Boolean(document.querySelector('#presence [data-user="user_bob"]')));
  await shot(alice, "recovered");
  log("both pages recovered the missed events");

  // The operations view, with some traffic to draw.
  const samples = (count) => until(alice, `${count} samples of events per second`, (count) =>
    (document.querySelector('[data-metric="events"] polyline')?.getAttribute("points")?.split(" ").length ?? 0) >= count, count);
  await alice.evaluate(() => (location.hash = "#ops"));
  await samples(3);
  await ask({ ask: "burst", org: ORG, pipeline: PIPELINE, count: 200 });
  await samples(12);
  await until(alice, "three clients and the lag of every partition", () =>
    Number(document.querySelector('[data-metric="clients"] .now')?.textContent) >= 3 && document.querySelectorAll(".lag").length > 0);
  await shot(alice, "ops-laptop");
  await bob.evaluate(() => (location.hash = "#ops"));
  await until(bob, "Bob's operations view", () => document.querySelectorAll(".lag").length > 0);
  await shot(bob, "ops-phone");
  console.log(JSON.stringify({ passed: true }));
} finally {
  await browser.close();
}
process.exit(0);

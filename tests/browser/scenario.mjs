// The browser scenarios' side of the line protocol tests/support/browser.rs
// speaks: a scenario asks the Rust test for what only it can do (produce a
// record, cut the network), one JSON line on stdout each
// (`{"ask": "stage", ..., "n": 1}`), and waits for its `{"done": n}` on
// stdin; `{"log": ...}` lines are the scenario's notes.
import { createInterface } from "node:readline";

const replies = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
let asked = 0;

/** Asks the Rust test for `what` and waits until it is done. */
export async function ask(what) {
  asked += 1;
  console.log(JSON.stringify({ ...what, n: asked }));
  const { value } = await replies.next();
  const reply = JSON.parse(value);
  if (reply.done !== asked) throw new Error(`asked ${asked}, the test answered ${value}`);
}

export const log = (message) => console.log(JSON.stringify({ log: message }));

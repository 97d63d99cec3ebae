// Pages built from the seed's snippets (docs/websocket-api.md, read by
// seedSnippet), run as a frontend developer would paste them, with the
// stock socket.io-client, for tests/seed_snippets.rs.
//
// A page is one script: the snippets, verbatim (or with a fix that
// client/README.md's "The seed's snippets" documents), and the page's own
// glue, evaluated in one function whose parameters are the names the
// snippets take from the page: `socket`, `console`, `refreshAuthToken`,
// `retryLastAction`, and `report` for the glue.
//
// Reads one JSON command per line on stdin, writes one JSON observation per
// line on stdout. Commands:
//   {"op":"open","client":"p","url":"http://127.0.0.1:3000","auth":{...},
//    "module":false,"snippets":[{"heading":"Error Recovery","index":0,
//    "fixes":[["from","to"]]}],"glue":"function f() {...}","exports":["f"]}
//      ("module": the project's client module's io instead of the stock io;
//      "fixes": text replacements applied to the snippet; "exports": the
//      page's functions that "call" may run.)
//   {"op":"call","client":"p","name":"subscribeToResource","args":[...]}
//   {"op":"act","client":"p","event":"subscribe","data":{...},"count":1}
//      (the page does something `count` times at once, with an
//      acknowledgement: the last one done is what `retryLastAction()` does
//      again)
//   {"op":"token","client":"p","token":"..."}   (answers "token-wanted")
// Observations: {"client","type":"connect"|"disconnect"|"event"|"recovered"|
//   "ack"|"log"|"token-wanted"|"retried"|"report", ...}
//   "ack": {"ref": "act"|"retry", "data"}; "log": what the page's console
//   printed ({"level","text"}); "report": what the glue's report(name, data)
//   said; "retried": retryLastAction() ran ("at": ms).
import { createInterface } from "node:readline";
import { io } from "socket.io-client";
import { withRecovery } from "../../client/recovery.js";
import { seedSnippet } from "./seed.mjs";

const recoveringIo = withRecovery(io);
const pages = new Map();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const now = () => performance.timeOrigin + performance.now();

function open({ client, url, auth, module, snippets, glue, exports }) {
  const socket = (module ? recoveringIo : io)(url, {
    auth: auth ?? {},
    transports: ["websocket"],
    // Reconnection as the stock client does it, at a test's pace.
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    forceNew: true,
  });
  // Before the page's listeners, so observations come in the order it sees them.
  socket.on("connect", () => out({ client, type: "connect", id: socket.id }));
  socket.on("disconnect", (reason) => out({ client, type: "disconnect", reason }));
  socket.on("recovered", (data) => out({ client, type: "recovered", data }));
  socket.onAny((event, ...args) => out({ client, type: "event", event, data: args[0] ?? null, at: now() }));

  // tokenWanted: the resolvers of refreshAuthToken() calls, oldest first.
  const page = { socket, tokenWanted: [], lastAction: null, functions: {} };
  const print =
    (level) =>
    (...args) =>
      out({ client, type: "log", level, text: args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ") });
  const names = {
    socket,
    console: { log: print("log"), error: print("error"), warn: print("warn") },
    // A page fetches a fresh token from its auth server: the test plays it.
    refreshAuthToken: () =>
      new Promise((resolve) => {
        page.tokenWanted.push(resolve);
        out({ client, type: "token-wanted" });
      }),
    retryLastAction: () => {
      out({ client, type: "retried", at: now() });
      if (page.lastAction) act(page, client, page.lastAction, "retry");
    },
    report: (name, data) => out({ client, type: "report", name, data: data ?? null }),
  };
  const code = [
    ...snippets.map(({ heading, index, fixes }) =>
      (fixes ?? []).reduce((text, [from, to]) => {
        if (!text.includes(from)) throw new Error(`"${heading}" no longer holds ${from}`);
        return text.replaceAll(from, to);
      }, seedSnippet(heading, index)),
    ),
    glue ?? "",
    `return { ${(exports ?? []).join(", ")} };`,
  ].join("\n");
  page.functions = new Function(...Object.keys(names), code)(...Object.values(names));
  pages.set(client, page);
}

function act(page, client, action, ref) {
  page.lastAction = action;
  page.socket.emit(action.event, action.data, (reply) => out({ client, type: "ack", ref, data: reply ?? null }));
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  const page = pages.get(command.client);
  switch (command.op) {
    case "open":
      return open(command);
    case "call":
      return page.functions[command.name](...(command.args ?? []));
    case "act": {
      for (let i = 0; i < (command.count ?? 1); i++) act(page, command.client, command, "act");
      return;
    }
    case "token":
      return page.tokenWanted.shift()(command.token);
    default:
      out({ type: "driver_error", message: `unknown op ${command.op}` });
  }
});
// The test closed our stdin: it is done (or failed). Leave nothing behind.
lines.on("close", () => {
  for (const { socket } of pages.values()) socket.disconnect();
  process.exit(0);
});

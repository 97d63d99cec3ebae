// Prints what a dashboard user would receive, so `make run` shows live events
// and the pipeline room's presence in the terminal.
// Usage: node watch.mjs URL TOKEN ORG_ID PIPELINE_ID [TYPE_EVERY_MS]
// With TYPE_EVERY_MS, it is a quiet teammate instead: it joins the pipeline
// room and types in its notes that often, printing nothing.
import { io } from "socket.io-client";

const [url, token, organizationId, pipelineId, typeEveryMs] = process.argv.slice(2);
const socket = io(url, { auth: { token }, transports: ["websocket"] });
const quiet = Boolean(typeEveryMs);
const show = (name) => (data) => quiet || console.log(`[watch] ${name} ${JSON.stringify(data)}`);
const room = { type: "pipeline", id: pipelineId };

socket.on("connected", (data) => {
  show("connected")(data);
  socket.emit("join-room", room, show("joined"));
  if (quiet) return;
  socket.emit("subscribe", { resource: "deal", filter: { pipelineId } }, show("subscribed"));
  socket.emit("subscribe", { resource: "contact", filter: { organizationId } }, show("subscribed"));
});
const events = ["resource-update", "resource-delete", "pipeline-update", "email-received", "notification"];
for (const name of [...events, "user-joined", "user-left", "user-typing", "error"]) {
  socket.on(name, show(name));
}
socket.on("connect_error", (err) => console.log(`[watch] connect_error ${err.message}`));
if (quiet) {
  setInterval(() => socket.emit("typing", { roomType: "pipeline", roomId: pipelineId, field: "notes" }), Number(typeEveryMs));
}

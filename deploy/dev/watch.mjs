// Prints what a dashboard user would receive, so `make run` shows live events
// in the terminal. Usage: node watch.mjs URL TOKEN ORG_ID PIPELINE_ID
import { io } from "socket.io-client";

const [url, token, organizationId, pipelineId] = process.argv.slice(2);
const socket = io(url, { auth: { token }, transports: ["websocket"] });
const show = (name) => (data) => console.log(`[watch] ${name} ${JSON.stringify(data)}`);

socket.on("connected", (data) => {
  show("connected")(data);
  socket.emit("subscribe", { resource: "deal", filter: { pipelineId } }, show("subscribed"));
  socket.emit("subscribe", { resource: "contact", filter: { organizationId } }, show("subscribed"));
});
for (const name of ["resource-update", "resource-delete", "pipeline-update", "email-received", "notification", "error"]) {
  socket.on(name, show(name));
}
socket.on("connect_error", (err) => console.log(`[watch] connect_error ${err.message}`));

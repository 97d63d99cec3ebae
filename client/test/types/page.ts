// A page using crm-bridge-client's generated types (client/index.d.ts) as
// the README and the seed do; `tsc --strict -p client/test/types` must pass
// (client/test/package.test.mjs runs it), so each `@ts-expect-error` below is a
// mistake the types catch: were it to type-check, tsc would fail on the
// unused directive.
import io, { type CrmBridgeSocket, type RecoveredReport, type SubscribeReply } from "crm-bridge-client";

const socket: CrmBridgeSocket = io("http://127.0.0.1:3000", { auth: { token: "t" } });

socket.on("connected", ({ sessionId, userId, notificationsCursor }) =>
  console.log(sessionId, userId, notificationsCursor),
);
socket.on("pipeline-update", (e) => e.newStage?.toUpperCase());
socket.on("resource-update", (e) => {
  const name: string | number | boolean | null | undefined = e.data["name"];
  return [e.resource, e.action, e.replayed === true, name];
});
socket.on("email-received", ({ threadId, contactId }) => [threadId, contactId]);
socket.on("notification", ({ type, title, link }) => [type, title, link]);
socket.on("user-typing", ({ userName, field, expiresAt }) => [userName, field, expiresAt]);
socket.on("subscription-resumed", ({ cursor, gaps }) => gaps.map((g) => [cursor, g.topic, g.from]));
socket.on("error", (error) => {
  if (error.code === "RATE_LIMITED") setTimeout(() => socket.connect(), error.retryAfter ?? 5000);
});
socket.on("recovered", ({ recovered, replayed, gaps }: RecoveredReport) =>
  console.log(recovered, replayed, gaps.map((g) => g.subscription.resource)),
);
socket.on("pong", () => {});
const flags: [boolean, number] = [socket.recovered, socket.replayed];

socket.emit(
  "subscribe",
  { resource: "deal", filter: { pipelineId: "pipeline_acme_sales" }, events: ["stage-change"] },
  (reply: SubscribeReply) => {
    if (!reply.ok) return console.error(reply.error.code, reply.error.message);
    console.log(reply.cursor, reply.subscription.resource);
  },
);
socket.emit("subscribe", { resource: "contact", id: "contact_123", since: "1:c0.12" });
socket.emit("subscribe", { resource: "email-thread", filter: { contactId: "contact_123" } });
socket.emit("subscribe", { resource: "notification", since: "1:n0.3" });
socket.emit("unsubscribe", { resource: "contact", id: "contact_123" }, (reply) => reply.ok);
socket.emit("join-room", { type: "pipeline", id: "pipeline_456" }, (reply) => {
  if (reply.ok) reply.members.map((m) => m.userName);
});
socket.emit("typing", { roomType: "deal", roomId: "d1", field: "notes" }, (reply) => reply.ok && reply.throttled);
socket.emit("ping", (reply) => reply.ok);

// A misspelt event name.
// @ts-expect-error
socket.on("pipeline-updated", () => {});
// A misspelt payload field.
// @ts-expect-error
socket.on("pipeline-update", (e) => e.newStag);
// An unknown resource.
// @ts-expect-error
socket.emit("subscribe", { resource: "invoice", id: "i1" });
// An event the resource does not have (a contact has no stage-change).
// @ts-expect-error
socket.emit("subscribe", { resource: "contact", id: "c1", events: ["stage-change"] });
// A filter key of another resource (pipelineId filters deals).
// @ts-expect-error
socket.emit("subscribe", { resource: "contact", filter: { pipelineId: "p1" } });
// A wrong acknowledgement shape.
// @ts-expect-error
socket.emit("subscribe", { resource: "deal", id: "d1" }, (reply: { ok: boolean; count: number }) => reply.count);
// An acknowledgement read before checking `ok`.
// @ts-expect-error
socket.emit("subscribe", { resource: "deal", id: "d1" }, (reply) => reply.cursor);
// A misspelt client event.
// @ts-expect-error
socket.emit("subcribe", { resource: "deal", id: "d1" });

export { flags };

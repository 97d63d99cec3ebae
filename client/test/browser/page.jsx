// The page of the Chromium scenario (tests/browser/react.mjs): the provider
// and hooks against the real bridge, under StrictMode, beside the seed's
// own hook and usage example. `window.scenario` ({ url, token, pipeline,
// contact }) is set by the driver; what the page shows carries data-
// attributes the driver waits on.
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { CrmBridgeProvider, useConnection, useNotifications, useSubscription } from "../../react.js";
import { ContactDetails } from "seed:react";

const { url, token, pipeline, contact } = window.scenario;

function Connection() {
  const { state, recovered, replayed, gaps } = useConnection();
  return (
    <p id="connection" data-state={state} data-recovered={String(recovered)} data-replayed={replayed}>
      {state}
      {recovered !== null && ` (recovered: ${recovered}, ${replayed} replayed, ${gaps.length} gaps)`}
    </p>
  );
}

/** Stage changes of the pipeline; two of these share one subscription. */
function Moves({ id }) {
  const [moves, setMoves] = useState([]);
  const { status } = useSubscription(
    { resource: "deal", filter: { pipelineId: pipeline }, events: ["stage-change"] },
    (_, move) => setMoves((seen) => [...seen, `${move.dealId}:${move.newStage}${move.replayed ? ":replayed" : ""}`]),
  );
  return (
    <ol id={id} data-status={status}>
      {moves.map((move) => <li key={move}>{move}</li>)}
    </ol>
  );
}

function Inbox() {
  return <ul id="inbox">{useNotifications().map((n) => <li key={n.id}>{n.title}</li>)}</ul>;
}

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <CrmBridgeProvider url={url} token={token}>
      <Connection />
      <Moves id="board" />
      <Moves id="ticker" />
      <Inbox />
    </CrmBridgeProvider>
    <ContactDetails contactId={contact} />
  </StrictMode>,
);

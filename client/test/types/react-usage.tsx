// What a TypeScript page may and may not write with crm-bridge-client/react;
// type-checked by client/test/package.test.mjs with `tsc --strict`.
import { CrmBridgeProvider, useConnection, useNotifications, useRoom, useSubscription } from "crm-bridge-client/react";

export function Board({ pipelineId }: { pipelineId: string }) {
  const { state, recovered, error } = useConnection();
  const subscription = useSubscription({ resource: "deal", filter: { pipelineId }, events: ["stage-change"] }, (name, data) => {
    if (name === "pipeline-update") console.log(data.newStage);
    // @ts-expect-error a resource-update has no newStage
    if (name === "resource-update") console.log(data.newStage);
  });
  // @ts-expect-error not a resource of the contract
  useSubscription({ resource: "invoice", id: "x" });
  const { members, typing } = useRoom({ type: "pipeline", id: pipelineId });
  // @ts-expect-error members carry userId and userName only
  members[0]?.email;
  const notifications = useNotifications();
  const refused: string | undefined = subscription.status === "refused" ? subscription.error?.code : undefined;
  // @ts-expect-error not a connection state
  const never: boolean = state === "offline";
  return (
    <p>
      {state} {String(recovered)} {error?.code} {refused} {typing.map((t) => t.field).join()} {notifications.length}
      {String(never)}
    </p>
  );
}

export const App = () => (
  <CrmBridgeProvider url="http://127.0.0.1:3000" token="t">
    <Board pipelineId="pipeline_acme_sales" />
  </CrmBridgeProvider>
);

// @ts-expect-error the provider needs the bridge's url
export const Lost = () => <CrmBridgeProvider token="t" />;

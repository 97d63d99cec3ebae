// The npm entry: socket.io-client's `io`, with crm-bridge recovery.
//   import io from "crm-bridge-client";   // instead of: import io from "socket.io-client";
import { io as plainIo } from "socket.io-client";
import { withRecovery } from "./recovery.js";

export const io = withRecovery(plainIo);
export { withRecovery };
export default io;

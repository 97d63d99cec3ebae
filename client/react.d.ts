// Types of crm-bridge-client/react (client/react.js); the contract's
// names come from the package's own declarations (index.d.ts).
import type { ReactNode } from "react";
import type { ManagerOptions, SocketOptions } from "socket.io-client";
import type {
  CrmBridgeSocket,
  ErrorObject,
  Gap,
  JoinRoomRequest,
  Notification,
  ServerToClientEvents,
  SubscribeRequest,
} from "./index.js";

export interface CrmBridgeProviderProps {
  /** The bridge; a new `url` makes a new socket. */
  url: string;
  /** Shorthand for `auth: { token }`; a new one is used from the next connection on. */
  token?: string;
  /** socket.io's `auth`, as for io(). */
  auth?: Record<string, unknown> | ((callback: (data: object) => void) => void);
  /** io()'s options, read when the socket is made. */
  options?: Partial<ManagerOptions & SocketOptions>;
  /** The connecting function: crm-bridge-client's `io` unless given. */
  io?: (url: string, options: Partial<ManagerOptions & SocketOptions>) => CrmBridgeSocket;
  children?: ReactNode;
}

export declare function CrmBridgeProvider(props: CrmBridgeProviderProps): ReactNode;

/** The provider's socket; null until it is made. */
export declare function useSocket(): CrmBridgeSocket | null;

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "refused" | "disconnected";

export interface Connection {
  state: ConnectionState;
  /** null until a reconnect; then whether it resumed everything. */
  recovered: boolean | null;
  replayed: number;
  gaps: Gap[];
  /** The last `error` the bridge sent, until the next `connected`. */
  error: ErrorObject | null;
}

export declare function useConnection(): Connection;

/** The events a subscription delivers, as `[name, payload]`: `name` narrows `payload`. */
export type SubscriptionEvent = {
  [Name in "resource-update" | "resource-delete" | "pipeline-update" | "email-received"]: [
    name: Name,
    data: Parameters<ServerToClientEvents[Name]>[0],
  ];
}["resource-update" | "resource-delete" | "pipeline-update" | "email-received"];

export type SubscriptionStatus =
  | { status: "pending"; error: null }
  | { status: "subscribed"; error: null }
  | { status: "refused"; error: ErrorObject | null };

export declare function useSubscription(
  request: SubscribeRequest,
  onEvent?: (...event: SubscriptionEvent) => void,
): SubscriptionStatus;

export interface RoomMember {
  userId: string;
  userName: string;
}

export interface RoomTypist extends RoomMember {
  field: string;
  /** When the indicator lapses unless renewed (ISO-8601). */
  expiresAt: string;
}

export interface Room {
  members: RoomMember[];
  typing: RoomTypist[];
  /** Why `join-room` was refused, if it was. */
  error: ErrorObject | null;
}

export declare function useRoom(room: Pick<JoinRoomRequest, "type" | "id">): Room;

/** Newest last. */
export declare function useNotifications(): readonly Notification[];

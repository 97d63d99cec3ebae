// STAND-IN, for client/react.d.ts to type-check on the react branch only:
// the contract's types are generated (schemas/*.avsc and the bridge's event
// mapping) by the contract work, whose client/index.d.ts replaces this file
// whole. Only the names react.d.ts imports, loosely.
import type { Socket } from "socket.io-client";

export type ErrorCode = "UNAUTHORIZED" | "FORBIDDEN" | "INVALID_REQUEST" | "RESOURCE_NOT_FOUND" | "RATE_LIMITED" | "SERVER_ERROR";
export interface ErrorObject { code: ErrorCode; message: string; timestamp: string; details?: Record<string, unknown>; retryAfter?: number }
export type ResourceKind = "contact" | "deal" | "email-thread";
export interface SubscribeRequest { resource: ResourceKind; id?: string; filter?: Record<string, string>; events?: string[]; since?: string }
export interface Gap { subscription?: unknown; [field: string]: unknown }
export interface RecoveredReport { recovered: boolean; replayed: number; gaps: Gap[] }
export interface ResourceUpdate { resource: ResourceKind; id: string; action: string; data: Record<string, unknown>; timestamp: string; userId: string; position: string; replayed?: true }
export interface ResourceDelete { resource: ResourceKind; id: string; timestamp: string; userId: string; position: string; replayed?: true }
export interface PipelineUpdate { pipelineId: string; dealId: string; previousStage: string; newStage: string; userId: string; timestamp: string; position: string; replayed?: true }
export interface EmailReceived { emailId: string; contactId: string; subject: string; from: string; timestamp: string; threadId: string; action: string; position: string; replayed?: true }
export interface Notification { id: string; type: string; title: string; message: string; link: string; timestamp: string; position: string; replayed?: true }
export interface JoinRoomRequest { type: "pipeline" | "deal" | "contact" | "email-thread"; id: string }
export interface ServerToClientEvents {
  "resource-update": (data: ResourceUpdate) => void;
  "resource-delete": (data: ResourceDelete) => void;
  "pipeline-update": (data: PipelineUpdate) => void;
  "email-received": (data: EmailReceived) => void;
  notification: (data: Notification) => void;
  error: (error: ErrorObject) => void;
  recovered: (report: RecoveredReport) => void;
}
export interface ClientToServerEvents {
  subscribe: (request: SubscribeRequest, ack?: (reply: unknown) => void) => void;
}
export type CrmBridgeSocket = Socket<ServerToClientEvents, ClientToServerEvents> & { recovered: boolean; replayed: number };
export declare function io(url: string, options?: Parameters<typeof import("socket.io-client").io>[1]): CrmBridgeSocket;
export default io;

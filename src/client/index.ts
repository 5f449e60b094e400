// bunchat/client: the typed SDK for bunchat servers, for browsers, Bun, Node 20+ (with a
// WebSocket class such as `ws`) and Deno, with no runtime dependencies. The protocol types
// are re-exported from the very module the server encodes its frames with, so a client
// and the server it talks to cannot disagree on a field.
export { connect, ChatClient } from "./client.ts";
export type {
  ClientEvents, ClientSnapshot, ConnectOptions, Gap, Identity, NickChange, PresenceChange, Status,
  ErrorFrame, HistoryFrame, JoinedFrame, NickFrame, PresenceFrame, TypingFrame, WelcomeFrame, WhoFrame,
} from "./client.ts";
export { ChatError, type ClientErrorCode } from "./errors.ts";
export type { BackoffOptions } from "./backoff.ts";
export type { HistoryOptions, HistoryTarget } from "./history.ts";
export type { RoomView } from "./room-state.ts";
export type { FetchLike, Refusal, SocketConstructor, SocketLike } from "./transport.ts";
export type { ClientFrame, ErrorCode, HistoryItem, MessageFrame, PrivateFrame, ReplayFacts, Ref, ServerFrame } from "../protocol/frames.ts";

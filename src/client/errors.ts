// The one error type the SDK rejects with: the server's stable error code (docs/PROTOCOL.md,
// "Errors") or one of the client's own, so callers branch on `code`, never on a message.
import type { ErrorCode } from "../protocol/frames.ts";

/** Codes the client itself produces: the server never sent an answer. */
export type ClientErrorCode =
  /** The outgoing queue is full while disconnected (see ConnectOptions.queueLimit). */
  | "queue_full"
  /** close() was called, or the server refused the connection for good, before an answer came. */
  | "closed"
  /** A handshake refusal that retrying cannot fix (e.g. name_taken, bad_token). */
  | "refused"
  /** A moderator closed this connection (close code 4001 / 4003): the client stays closed. */
  | "kicked"
  | "banned";

export class ChatError extends Error {
  override readonly name = "ChatError";

  constructor(
    /** The server's error code, or one of the client's (ClientErrorCode). */
    readonly code: ErrorCode | ClientErrorCode | (string & {}),
    message: string,
  ) {
    super(message);
  }
}

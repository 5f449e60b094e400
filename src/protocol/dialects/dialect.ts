// A dialect is a way of speaking the chat: how the engine's frames look on the wire and
// how client text is read. Connections of different dialects share rooms; a room frame is
// rendered once per dialect that has listeners on this node (each dialect fans out on a
// Bun topic of its own), never once per recipient.
import type { DialectName } from "../../config.ts";
import type { ClientFrame, ServerFrame } from "../frames.ts";
import type { TextRules } from "../decode.ts";

/** What a client sent, as the engine understands it — or a reply the dialect gives itself. */
export type Reading = { frame: ClientFrame } | { reply: string };

export interface Dialect {
  readonly name: DialectName;
  /** The Bun topic this dialect's sockets subscribe to for a room topic. */
  topic(roomTopic: string): string;
  /**
   * A server frame as zero or more wire frames. `viewer` is the person the frame is
   * rendered for when it goes to one connection (welcome, replies); absent for fan-out.
   */
  render(frame: ServerFrame, viewer?: string): string[];
  /** Decode one text frame (throws ProtocolError for bad input). */
  read(raw: string, rules: TextRules): Reading;
}

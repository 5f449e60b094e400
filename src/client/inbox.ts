// The person's inbox position: every private message they sent or received has a `box`
// number (1, 2, 3… per person). Reconnecting with ?inbox=<last box> replays exactly what
// followed, so `box` de-duplicates private messages the way ids do rooms, and a jump in it
// is a hole (trimmed by retention).
import type { PrivateFrame } from "../protocol/frames.ts";

export type InboxVerdict = "new" | "duplicate" | "after-gap";

export class InboxCursor {
  constructor(public last: number | undefined = undefined) {}

  /** Classify a private frame and move the cursor past it. */
  accept(message: PrivateFrame): InboxVerdict {
    const box = message.box;
    if (box === undefined) return "new"; // not an inbox frame (history pages carry no box)
    const last = this.last;
    if (last !== undefined && box <= last) return "duplicate";
    this.last = box;
    return last !== undefined && box > last + 1 ? "after-gap" : "new";
  }

  /**
   * The server's position once the welcome's missed messages were sent: known to be
   * caught up to it (everything up to it arrived, or was never ours to get).
   */
  caughtUp(position: number): void {
    if (this.last === undefined || position > this.last) this.last = position;
  }
}

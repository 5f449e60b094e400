// The recent tail of a room, read once for everyone who enters it within a short window.
// A storm of joins into one room would otherwise read the same page once per joiner. A
// page up to TTL old is safe to hand out: the replay reads on from its last id to what
// the node has delivered since (replay.ts), so nothing falls between it and the live stream.
import type { Broker, Page } from "./ports.ts";
import { ShortCache } from "./short-cache.ts";

/** How long one read serves: a few ms of a storm's joins. */
export const TAIL_TTL_MS = 50;
export class TailCache {
  private readonly pages: ShortCache<Page>;

  constructor(private readonly broker: Broker, ttlMs = TAIL_TTL_MS) {
    this.pages = new ShortCache(ttlMs);
  }

  read(room: string, limit: number): Promise<Page> {
    return this.pages.get(room, limit, () => this.broker.before(room, undefined, limit));
  }

  /** A message of the room was deleted: the next joiner reads the tail afresh. */
  forget(room: string): void {
    this.pages.forget(room);
  }
}

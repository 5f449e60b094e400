// The recent tail of a room, read once for everyone who enters it within a short window.
// A storm of joins into one room would otherwise read the same page once per joiner. A
// page up to TTL old is safe to hand out: the replay reads on from its last id to what
// the node has delivered since (replay.ts), so nothing falls between it and the live stream.
import type { Broker, Page } from "./ports.ts";

/** How long one read serves: a few ms of a storm's joins. */
export const TAIL_TTL_MS = 50;
/** Rooms remembered at once; beyond, the oldest go (a storm touches few rooms). */
const MAX_ROOMS = 1000;

export class TailCache {
  private readonly pages = new Map<string, { at: number; limit: number; page: Promise<Page> }>();

  constructor(private readonly broker: Broker, private readonly ttlMs = TAIL_TTL_MS) {}

  read(room: string, limit: number): Promise<Page> {
    const now = performance.now();
    const hit = this.pages.get(room);
    if (hit && hit.limit === limit && now - hit.at < this.ttlMs) return hit.page;
    const page = this.broker.before(room, undefined, limit);
    // A failed read is not kept: the next joiner asks again.
    page.catch(() => this.pages.get(room)?.page === page && this.pages.delete(room));
    this.pages.delete(room);
    if (this.pages.size >= MAX_ROOMS) this.pages.delete(this.pages.keys().next().value!);
    this.pages.set(room, { at: now, limit, page });
    return page;
  }

  /** A message of the room was deleted: the next joiner reads the tail afresh. */
  forget(room: string): void {
    this.pages.delete(room);
  }
}

// Presence coalescing: joins and leaves of a room are gathered for a short window and
// published as one frame, so N clients joining at once cost a few frames per window
// instead of N² (one presence frame to N members for each of N joins). Big rooms get a
// longer window — PRESENCE_WINDOW per started thousand members — because each presence
// frame there goes to thousands of sockets: a 10,000-member room hears about joins and
// leaves every 1.5 s instead of every 150 ms. In a cluster every node publishes its own
// people's changes to every member, so the size that counts is the room's on all nodes,
// and the window also grows with the number of nodes: a room hears as often as on one.

export interface PresenceChange {
  room: string;
  joined: string[];
  left: string[];
}

export class PresenceCoalescer {
  private pending = new Map<string, { joined: Set<string>; left: Set<string> }>();
  private readonly lastFlush = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly publish: (change: PresenceChange) => void | Promise<void>,
    private readonly roomSize: (room: string) => number = () => 0,
    /** Nodes publishing presence (1 on its own). */
    private readonly nodes: () => number = () => 1,
  ) {}

  /** The room's size across the cluster, as last counted (emits learn it). */
  private readonly counted = new Map<string, number>();

  counts(room: string, online: number): void {
    if (this.roomSize(room) > 0) this.counted.set(room, online);
  }

  joined(room: string, name: string): void {
    const p = this.entry(room);
    // A leave then a join within the window cancel out: the user never looked gone.
    if (!p.left.delete(name)) p.joined.add(name);
    this.schedule();
  }

  left(room: string, name: string): void {
    const p = this.entry(room);
    if (!p.joined.delete(name)) p.left.add(name);
    this.schedule();
  }

  private entry(room: string) {
    let p = this.pending.get(room);
    if (!p) {
      p = { joined: new Set(), left: new Set() };
      this.pending.set(room, p);
    }
    return p;
  }

  private windowFor(room: string): number {
    const size = Math.max(this.roomSize(room), this.counted.get(room) ?? 0);
    return this.windowMs * Math.max(1, Math.ceil(size / 1000)) * Math.max(1, this.nodes());
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.flushDue(), this.windowMs);
  }

  /** Publish rooms whose window has passed; the rest wait for a later tick. */
  private flushDue(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const [room, p] of this.pending) {
      if (now - (this.lastFlush.get(room) ?? -Infinity) < this.windowFor(room)) continue;
      this.pending.delete(room);
      void this.emit(room, p);
      // A room nobody here is in any more needs no window: it costs nothing from now on.
      if (this.roomSize(room) === 0) {
        this.lastFlush.delete(room);
        this.counted.delete(room);
      } else {
        this.lastFlush.set(room, now);
      }
    }
    if (this.pending.size > 0) this.schedule();
    // Windows long past say nothing: drop them, so rooms used once cost nothing later.
    if (this.lastFlush.size > 1000) {
      const longest = this.windowMs * 20;
      for (const [room, at] of this.lastFlush) {
        if (now - at <= longest) continue;
        this.lastFlush.delete(room);
        this.counted.delete(room);
      }
    }
  }

  /** Publish everything pending now, whatever the windows (shutdown). */
  async flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const pending = this.pending;
    this.pending = new Map();
    const sent: (void | Promise<void>)[] = [];
    for (const [room, p] of pending) sent.push(this.emit(room, p));
    await Promise.allSettled(sent);
  }

  /** Publish one room's changes, unless they cancelled out. */
  private emit(room: string, p: { joined: Set<string>; left: Set<string> }): void | Promise<void> {
    if (p.joined.size === 0 && p.left.size === 0) return;
    return this.publish({ room, joined: [...p.joined], left: [...p.left] });
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

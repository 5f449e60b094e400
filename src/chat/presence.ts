// Presence coalescing: joins and leaves of a room are gathered for a short window and
// published as one frame, so N clients joining at once cost N frames in total per room
// window instead of N² (one presence frame to N members for each of N joins).

export interface PresenceChange {
  room: string;
  joined: string[];
  left: string[];
}

export class PresenceCoalescer {
  private pending = new Map<string, { joined: Set<string>; left: Set<string> }>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly windowMs: number, private readonly publish: (change: PresenceChange) => void) {}

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

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.flush(), this.windowMs);
  }

  flush(): void {
    this.timer = undefined;
    const pending = this.pending;
    this.pending = new Map();
    for (const [room, p] of pending) {
      if (p.joined.size === 0 && p.left.size === 0) continue;
      this.publish({ room, joined: [...p.joined], left: [...p.left] });
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

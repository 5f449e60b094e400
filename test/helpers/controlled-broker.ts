// A broker wrapper whose answers a test releases when it chooses: hold the answers of
// subscribe, reads or publishes, release them in order or reversed, make the next ones
// fail, and hold the
// frames the broker delivers (as Redis delivers on another connection than it answers
// reads on). Every race in the engine becomes a deterministic sequence of steps.
import type { Broker, Deliver, Page, PendingMessage } from "../../src/engine/ports.ts";
import { BrokerUnavailable } from "../../src/engine/ports.ts";
import type { HistoryItem } from "../../src/protocol/frames.ts";

export type Controlled = "subscribe" | "after" | "before" | "publish";

interface HeldFrame {
  topic: string;
  frame: string;
  seq: number;
}

export class ControlledBroker implements Broker {
  private readonly held = new Map<Controlled, (() => void)[]>();
  private readonly holding = new Set<Controlled>();
  private readonly failing = new Map<Controlled, number>();
  readonly calls: Record<Controlled, number> = { subscribe: 0, after: 0, before: 0, publish: 0 };
  private deliver: Deliver = () => {};
  private holdingFrames = false;
  private readonly frames: HeldFrame[] = [];
  private readonly waiters: { topic: string; seq: number; done: (ok: boolean) => void }[] = [];

  constructor(readonly inner: Broker) {
    inner.onDeliver((topic, frame, seq) => {
      if (this.holdingFrames) this.frames.push({ topic, frame, seq });
      else this.pass(topic, frame, seq);
    });
  }

  /** Calls of `method` from now on wait until `release(method)`. */
  hold(method: Controlled): void {
    this.holding.add(method);
  }

  /** Calls of `method` waiting now. */
  waiting(method: Controlled): number {
    return this.held.get(method)?.length ?? 0;
  }

  /** Let the waiting calls through (oldest first, or newest first) and stop holding. */
  release(method: Controlled, order: "in order" | "reversed" = "in order"): void {
    this.holding.delete(method);
    const list = this.held.get(method) ?? [];
    this.held.delete(method);
    for (const go of order === "reversed" ? list.reverse() : list) go();
  }

  /** The next `times` calls of `method` reject as an unavailable backend would. */
  fail(method: Controlled, times = 1): void {
    this.failing.set(method, times);
  }

  /** Frames the inner broker delivers are kept back until releaseFrames(). */
  holdFrames(): void {
    this.holdingFrames = true;
  }

  releaseFrames(): void {
    this.holdingFrames = false;
    for (const f of this.frames.splice(0)) this.pass(f.topic, f.frame, f.seq);
  }

  private pass(topic: string, frame: string, seq: number): void {
    this.deliver(topic, frame, seq);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.topic === topic && this.delivered(topic) >= w.seq) {
        this.waiters.splice(i, 1);
        w.done(true);
      }
    }
  }

  /**
   * The call runs at once (as Redis would execute it); its answer is what is held back,
   * or replaced by a failure.
   */
  private async gate<T>(method: Controlled, run: () => Promise<T>): Promise<T> {
    this.calls[method]++;
    const failures = this.failing.get(method) ?? 0;
    if (failures > 0) this.failing.set(method, failures - 1);
    // A failing call still runs (a failed subscribe holds its reference, as the contract says).
    const ran: Promise<T | null> = method === "publish" && failures > 0 ? Promise.resolve(null) : run();
    const answer: Promise<T> = ran.then((value) => {
      if (failures > 0) throw new BrokerUnavailable(`${method} failed on purpose`);
      return value as T;
    });
    answer.catch(() => {}); // observed below, after the hold
    if (this.holding.has(method)) {
      await new Promise<void>((resolve) => {
        let list = this.held.get(method);
        if (!list) this.held.set(method, (list = []));
        list.push(resolve);
      });
    }
    return answer;
  }

  get keepsHistory(): boolean {
    return this.inner.keepsHistory;
  }
  epoch(): string {
    return this.inner.epoch();
  }
  onDeliver(deliver: Deliver): void {
    this.deliver = deliver;
  }
  publish(message: PendingMessage): Promise<HistoryItem> {
    return this.gate("publish", () => this.inner.publish(message));
  }
  broadcast(topic: string, frame: string): void {
    this.inner.broadcast(topic, frame);
  }
  subscribe(topic: string): Promise<void> {
    return this.gate("subscribe", () => this.inner.subscribe(topic));
  }
  unsubscribe(topic: string): void {
    this.inner.unsubscribe(topic);
  }
  /** What reached the engine: frames held back are not delivered yet. */
  delivered(topic: string): number {
    const firstHeld = this.frames.find((f) => f.topic === topic && f.seq > 0);
    return firstHeld ? firstHeld.seq - 1 : this.inner.delivered(topic);
  }
  deliveredUpTo(topic: string, seq: number, timeoutMs: number): Promise<boolean> {
    if (this.delivered(topic) >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { topic, seq, done: resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at < 0) return;
        this.waiters.splice(at, 1);
        resolve(false);
      }, timeoutMs);
    });
  }
  after(conversation: string, afterId: number, limit: number): Promise<Page> {
    return this.gate("after", () => this.inner.after(conversation, afterId, limit));
  }
  before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page> {
    return this.gate("before", () => this.inner.before(conversation, beforeId, limit));
  }
  delete(room: string, id: number): Promise<boolean> {
    return this.inner.delete(room, id);
  }
  health(): Record<string, unknown> {
    return this.inner.health();
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

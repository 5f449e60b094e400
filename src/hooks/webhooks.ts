// Webhooks (WEBHOOK_URL): what happens in the chat, told to the backend in batches.
//   POST <url>  {"events":[{"id":"…","type":"member.joined","ts":…,"node":"a","data":{…}}, …]}
// signed (signature.ts). Events wait in a bounded queue: emitting one is a push, so the
// chat never waits for the backend. One batch is in flight at a time (events arrive in
// order); a failed POST (network error, timeout, non-2xx) is retried with exponential
// backoff, and after MAX_ATTEMPTS the batch is dropped. A full queue drops its oldest
// event. Every drop is counted in /metrics and logged (throttled), never silent.
// Each event comes from the one node whose change it was (the directory decides: see
// DirectoryEvent), so a cluster sends each event once.
import type { DirectoryEvent } from "../engine/ports.ts";
import type { Logger } from "../obs/log.ts";
import { Counter, Gauge, LabelledCounter, type Metrics } from "../obs/metrics.ts";
import type { HistoryItem } from "../protocol/frames.ts";
import { signedPost, withoutCredentials } from "./signature.ts";
import { ThrottledWarning } from "./throttled-log.ts";

export const WEBHOOK_EVENTS = ["user.connected", "user.disconnected", "member.joined", "member.left", "room.occupied", "room.vacated", "message.stored"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  /** Milliseconds since the epoch, when it happened. */
  ts: number;
  node: string;
  data: Record<string, unknown>;
}

export interface WebhookTiming {
  /** Events per POST at most. */
  batchMax: number;
  /** How long the first event of a batch waits for company. */
  lingerMs: number;
  /** One POST's time limit. */
  timeoutMs: number;
  /** Backoff before the second attempt; doubles each time, at most retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
}

const DEFAULT_TIMING: WebhookTiming = { batchMax: 100, lingerMs: 200, timeoutMs: 5000, retryBaseMs: 500, retryMaxMs: 30_000, maxAttempts: 10 };

export interface WebhookOptions {
  url: string;
  secret: string;
  /** The events to send (all when empty). */
  events: readonly string[];
  queueLimit: number;
  node: string;
  userAgent: string;
  metrics: Metrics;
  log: Logger;
  timing?: Partial<WebhookTiming>;
}

export class Webhooks {
  readonly queued = new Counter("bunchat_webhook_events_total", "webhook events queued");
  readonly delivered = new Counter("bunchat_webhook_delivered_total", "webhook events the receiver accepted");
  readonly failures = new Counter("bunchat_webhook_failures_total", "webhook POSTs that failed (each attempt)");
  readonly dropped = new LabelledCounter("bunchat_webhook_dropped_total", "webhook events dropped: overflow (queue full) or gave_up (retries exhausted)", "reason");
  private readonly timing: WebhookTiming;
  private readonly wanted: Set<string>;
  private queue: WebhookEvent[] = [];
  private head = 0;
  /** The batches being sent now, one after another. */
  private flight: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private readonly overflow: ThrottledWarning;
  private readonly failing: ThrottledWarning;
  private readonly where: string;

  constructor(private readonly options: WebhookOptions) {
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.wanted = new Set(options.events.length > 0 ? options.events : WEBHOOK_EVENTS);
    this.where = withoutCredentials(options.url);
    this.overflow = new ThrottledWarning(options.log, "webhook_queue_overflow");
    this.failing = new ThrottledWarning(options.log, "webhook_failed");
    const m = options.metrics;
    m.add(new Gauge("bunchat_webhook_queue", "webhook events waiting to be sent", () => this.length));
    for (const metric of [this.queued, this.delivered, this.failures, this.dropped]) m.add(metric);
  }

  get length(): number {
    return this.queue.length - this.head;
  }

  /** A directory event (user, member, room). */
  readonly directoryEvent = (event: DirectoryEvent): void => {
    const { type, ...data } = event;
    this.emit(type, data);
  };

  /** A message stored (by a person, or by the backend through the server API). */
  messageStored(item: HistoryItem, person: string | undefined): void {
    if (!this.wanted.has("message.stored")) return;
    const { type: _type, ref: _ref, ...data } = item;
    this.emit("message.stored", { kind: item.type === "message" ? "room" : "private", ...data, ...(person ? { person } : {}) });
  }

  emit(type: WebhookEventType, data: Record<string, unknown>): void {
    if (this.stopped || !this.wanted.has(type)) return;
    if (this.length >= this.options.queueLimit) {
      this.head++;
      // Drops happen while a batch is stuck in its retries, when take() (which compacts)
      // is not called for minutes: without this the dropped events would stay in the
      // array and memory would grow with the traffic instead of being bounded by the limit.
      this.compact();
      this.dropped.inc("overflow");
      this.overflow.warn({ url: this.where, queueLimit: this.options.queueLimit });
    }
    this.queue.push({ id: crypto.randomUUID(), type, ts: Date.now(), node: this.options.node, data });
    this.queued.inc();
    this.schedule();
  }

  private schedule(): void {
    if (this.flight || this.timer) return;
    if (this.length >= this.timing.batchMax) return void this.send();
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.send();
    }, this.timing.lingerMs);
    this.timer.unref?.();
  }

  private take(): WebhookEvent[] {
    const batch = this.queue.slice(this.head, this.head + this.timing.batchMax);
    this.head += batch.length;
    this.compact();
    return batch;
  }

  /** Compact now and then, so the array does not grow without end. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private send(): Promise<void> {
    this.flight ??= (async () => {
      try {
        while (this.length > 0) await this.deliver(this.take());
      } finally {
        this.flight = null;
      }
    })();
    return this.flight;
  }

  /** POST one batch until it is accepted or the attempts run out. */
  private async deliver(batch: WebhookEvent[]): Promise<void> {
    const body = JSON.stringify({ events: batch });
    const t = this.timing;
    for (let attempt = 1; attempt <= t.maxAttempts; attempt++) {
      const why = await this.post(body);
      if (why === null) {
        this.delivered.inc(batch.length);
        return;
      }
      this.failures.inc();
      this.failing.warn({ url: this.where, why, attempt, events: batch.length });
      if (this.stopped || attempt === t.maxAttempts) break;
      await this.pause(Math.min(t.retryMaxMs, t.retryBaseMs * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2));
    }
    this.dropped.inc("gave_up", batch.length);
    this.options.log.warn("webhook_gave_up", { url: this.where, events: batch.length, attempts: t.maxAttempts });
  }

  /** null when the receiver accepted it, else why not. */
  private async post(body: string): Promise<string | null> {
    try {
      const res = await signedPost(this.options.url, body, { ...this.options, signal: AbortSignal.timeout(this.timing.timeoutMs) });
      await res.arrayBuffer();
      return res.ok ? null : `status ${res.status}`;
    } catch (error) {
      return error instanceof Error && error.name === "TimeoutError" ? `no answer within ${this.timing.timeoutMs} ms` : String(error);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      timer.unref?.();
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  /** Graceful stop: no new events; what is queued gets one last try, for at most `deadlineMs`. */
  async stop(deadlineMs = 2000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopped = true;
    this.wake?.();
    await Promise.race([this.send(), Bun.sleep(deadlineMs)]);
  }
}

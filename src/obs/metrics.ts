// Counters, gauges and summaries rendered in the Prometheus text exposition format.
// Plain numbers in objects: incrementing one is a property add, cheap on the hot path.

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

export class Counter {
  value = 0;
  constructor(readonly name: string, readonly help: string) {}
  inc(by = 1): void {
    this.value += by;
  }
  render(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n${this.name} ${this.value}\n`;
  }
}

/** A counter split by one label (e.g. refusal reason, error code). */
export class LabelledCounter {
  readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string, readonly label: string) {}
  inc(labelValue: string, by = 1): void {
    this.values.set(labelValue, (this.values.get(labelValue) ?? 0) + by);
  }
  get(labelValue: string): number {
    return this.values.get(labelValue) ?? 0;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [v, n] of this.values) out += `${this.name}${labelText({ [this.label]: v })} ${n}\n`;
    return out;
  }
}

export class Gauge {
  constructor(readonly name: string, readonly help: string, readonly read: () => number) {}
  render(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n${this.name} ${this.read()}\n`;
  }
}

/** Fixed-bucket histogram: observe() is a short loop over a handful of bounds. */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= this.bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      out += `${this.name}_bucket{le="${this.bounds[i]}"} ${cumulative}\n`;
    }
    out += `${this.name}_bucket{le="+Inf"} ${this.count}\n${this.name}_sum ${this.sum}\n${this.name}_count ${this.count}\n`;
    return out;
  }
}

export interface Renderable {
  render(): string;
}

/** Every metric bunchat exposes, created once per server. */
export class Metrics {
  readonly admitted = new Counter("bunchat_connections_admitted_total", "WebSocket upgrades accepted");
  readonly refused = new LabelledCounter("bunchat_connections_refused_total", "WebSocket upgrades refused before a socket was allocated", "reason");
  readonly closed = new LabelledCounter("bunchat_connections_closed_total", "WebSocket connections closed, by close code", "code");
  readonly messagesIn = new Counter("bunchat_messages_in_total", "frames received from clients");
  readonly messagesOut = new Counter("bunchat_messages_out_total", "frames delivered to clients (fan-out counted per recipient)");
  readonly chatMessages = new Counter("bunchat_chat_messages_total", "room chat messages accepted and published");
  readonly privateMessages = new Counter("bunchat_private_messages_total", "private messages accepted and delivered");
  readonly presenceFrames = new Counter("bunchat_presence_frames_total", "coalesced presence frames published");
  readonly rateLimited = new Counter("bunchat_rate_limited_total", "client frames dropped by the rate limit");
  readonly zombiesTerminated = new Counter("bunchat_zombies_terminated_total", "sockets terminated for missing a ping");
  readonly bytesIn = new Counter("bunchat_bytes_in_total", "payload bytes received from clients");
  readonly bytesOut = new Counter("bunchat_bytes_out_total", "payload bytes sent to clients (fan-out counted per recipient)");
  readonly errors = new LabelledCounter("bunchat_errors_total", "error frames sent to clients, by code", "code");
  readonly stored = new Counter("bunchat_history_messages_stored_total", "messages committed to the history store");
  readonly storeErrors = new Counter("bunchat_history_store_errors_total", "history commits that failed");
  readonly batchSize = new Histogram("bunchat_history_batch_size", "messages per group commit", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]);
  readonly checkpoints = new Counter("bunchat_history_checkpoints_total", "background checkpoints that copied write-ahead log pages into the history file");
  readonly commitSeconds = new Histogram("bunchat_history_commit_seconds", "time to commit one group", [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]);
  private readonly extra: Renderable[] = [];

  constructor(connectionsNow: () => number, startedAt: number) {
    this.extra.push(new Gauge("bunchat_connections", "open WebSocket connections", connectionsNow));
    this.extra.push(new Gauge("bunchat_uptime_seconds", "seconds since start", () => Math.round((Date.now() - startedAt) / 1000)));
  }

  add(metric: Renderable): void {
    this.extra.push(metric);
  }

  render(): string {
    const own: Renderable[] = [
      this.admitted, this.refused, this.closed, this.messagesIn, this.messagesOut, this.chatMessages,
      this.privateMessages, this.presenceFrames, this.rateLimited, this.zombiesTerminated, this.bytesIn,
      this.bytesOut, this.errors, this.stored, this.storeErrors, this.checkpoints, this.batchSize, this.commitSeconds,
    ];
    return [...own, ...this.extra].map((m) => m.render()).join("");
  }
}

// One load-generator process: it holds a share of the clients of a scenario and reports
// counts and a latency histogram to the coordinator (bench/load.ts) over IPC. Several of
// these run at once so the generator uses every core.
import { Histogram } from "./histogram.ts";
import { extract, isWelcome, now, payload, privateFrame, type TargetKind } from "./wire.ts";

export type Scenario = "burst" | "fanout" | "storm" | "idle" | "private";

export interface WorkerSpec {
  scenario: Scenario;
  kind: TargetKind;
  /** Where receivers / subscribers / connects go (rotated by client index). */
  urls: string[];
  /** Where publishers go (fanout; a different node in cluster runs). */
  publisherUrls: string[];
  worker: number;
  clients: number;
  clientOffset: number;
  totalClients: number;
  messages: number;
  publishers: number;
  publisherOffset: number;
  totalPublishers: number;
  /** Messages per second per publisher (fanout). */
  rate: number;
  durationMs: number;
  size: number;
  timeoutMs: number;
  concurrency: number;
  room: string;
}

/** What every run counts, per worker and in total. */
export interface DeliveryCounts {
  connected: number;
  refused: number;
  /** Clients the server disconnected while the scenario ran (e.g. a backpressure policy). */
  closedEarly: number;
  sent: number;
  received: number;
  expected: number;
  duplicates: number;
  reordered: number;
}

export interface WorkerResult extends DeliveryCounts {
  worker: number;
  startedAt: number;
  finishedAt: number;
  latency: { counts: number[]; max: number };
  timedOut: boolean;
}

export type ToWorker = { cmd: "start"; spec: WorkerSpec } | { cmd: "go"; at: number } | { cmd: "stop" };
export type FromWorker =
  | { ev: "ready"; connected: number; refused: number }
  | { ev: "progress"; sent: number; received: number; connected: number }
  | { ev: "done"; result: WorkerResult };

const send = (m: FromWorker) => process.send?.(m);

interface Client {
  ws: WebSocket;
  name: string;
  id: number;
  /** Highest seq seen per publisher; -1 = none. */
  last: Int32Array;
  received: number;
}

class Run {
  readonly latency = new Histogram();
  readonly clients: Client[] = [];
  readonly publishers: Client[] = [];
  sent = 0;
  received = 0;
  duplicates = 0;
  reordered = 0;
  refused = 0;
  /** Clients the server closed while the scenario ran (e.g. a backpressure policy). */
  closedEarly = 0;
  stopping = false;
  startedAt = 0;
  finishedAt = 0;
  timedOut = false;
  private goResolve!: (at: number) => void;
  readonly go = new Promise<number>((r) => (this.goResolve = r));
  private progressTimer: ReturnType<typeof setInterval>;

  constructor(readonly spec: WorkerSpec) {
    this.progressTimer = setInterval(() => send({ ev: "progress", sent: this.sent, received: this.received, connected: this.clients.length + this.publishers.length }), 500);
  }

  start(at: number): void {
    this.goResolve(at);
  }

  url(base: string, name: string): string {
    const u = new URL(base);
    u.searchParams.set("name", name);
    u.searchParams.set("room", this.spec.room);
    return u.toString();
  }

  /** Open one client; resolves when it is usable (bunchat: welcome; peers: open). */
  connect(base: string, name: string, id: number, onFrame: (c: Client, frame: string) => void): Promise<Client | null> {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url(base, name));
      const client: Client = { ws, name, id, last: new Int32Array(Math.max(1, this.spec.totalPublishers)).fill(-1), received: 0 };
      let ready = false;
      const done = (ok: boolean) => {
        if (ready) return;
        ready = true;
        resolve(ok ? client : null);
      };
      ws.onopen = () => {
        if (this.spec.kind === "peer") done(true);
      };
      ws.onmessage = (e) => {
        const frame = e.data as string;
        if (!ready && isWelcome(this.spec.kind, frame)) return done(true);
        onFrame(client, frame);
      };
      ws.onerror = () => done(false);
      ws.onclose = () => {
        if (ready && !this.stopping) this.closedEarly++;
        done(false);
      };
    });
  }

  /** Count a delivery: latency, duplicates, order per publisher. */
  deliver(c: Client, frame: string): void {
    const p = extract(this.spec.kind, frame);
    if (!p) return;
    const last = c.last[p.publisher] ?? -1;
    if (p.seq === last) {
      this.duplicates++;
      return;
    }
    if (p.seq < last) this.reordered++;
    else c.last[p.publisher] = p.seq;
    c.received++;
    this.received++;
    this.latency.record(now() - p.sentAt);
  }

  async connectMany(count: number, offset: number, urls: string[], prefix: string, onFrame: (c: Client, f: string) => void, into: Client[]): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < count) {
        const i = next++;
        const global = offset + i;
        const c = await this.connect(urls[global % urls.length]!, `${prefix}${global}`, global, onFrame);
        if (c) into.push(c);
        else this.refused++;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.spec.concurrency, count)) }, lane));
  }

  result(expected: number): WorkerResult {
    clearInterval(this.progressTimer);
    return {
      worker: this.spec.worker,
      connected: this.clients.length + this.publishers.length,
      refused: this.refused,
      closedEarly: this.closedEarly,
      sent: this.sent,
      received: this.received,
      expected,
      duplicates: this.duplicates,
      reordered: this.reordered,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
      latency: this.latency.toJSON(),
      timedOut: this.timedOut,
    };
  }

  closeAll(): void {
    this.stopping = true;
    for (const c of [...this.clients, ...this.publishers]) c.ws.close();
  }

  /** Resolve when `condition` holds or the deadline passes (then mark timedOut). */
  async until(condition: () => boolean, deadline: number): Promise<void> {
    while (!condition()) {
      if (Date.now() > deadline) {
        this.timedOut = true;
        return;
      }
      await Bun.sleep(5);
    }
  }
}

async function sendPaced(ws: WebSocket, frames: () => string | null, onSent: () => void): Promise<void> {
  // "As fast as the server accepts": write while the socket's buffer is small, yield otherwise.
  for (;;) {
    for (let k = 0; k < 64; k++) {
      const frame = frames();
      if (frame === null) return;
      ws.send(frame);
      onSent();
    }
    while (ws.bufferedAmount > 256 * 1024) await Bun.sleep(1);
    await new Promise((r) => setImmediate(r));
  }
}

async function burst(run: Run): Promise<WorkerResult> {
  const s = run.spec;
  await run.connectMany(s.clients, s.clientOffset, s.urls, "burst-", (c, f) => run.deliver(c, f), run.clients);
  send({ ev: "ready", connected: run.clients.length, refused: run.refused });
  const deadline = (await run.go) + s.timeoutMs;
  run.startedAt = now();
  const expectedEach = s.totalClients * s.messages;
  await Promise.all(
    run.clients.map((c) => {
      let seq = 0;
      return sendPaced(c.ws, () => (seq < s.messages ? payload(c.id, seq++, s.size) : null), () => run.sent++);
    }),
  );
  await run.until(() => run.clients.every((c) => c.received >= expectedEach), deadline);
  run.finishedAt = now();
  return run.result(expectedEach * run.clients.length);
}

async function fanout(run: Run): Promise<WorkerResult> {
  const s = run.spec;
  await run.connectMany(s.clients, s.clientOffset, s.urls, "sub-", (c, f) => run.deliver(c, f), run.clients);
  await run.connectMany(s.publishers, s.publisherOffset, s.publisherUrls, "pub-", () => {}, run.publishers);
  send({ ev: "ready", connected: run.clients.length + run.publishers.length, refused: run.refused });
  const goAt = await run.go;
  const deadline = goAt + s.durationMs + s.timeoutMs;
  run.startedAt = now();
  const perPublisher = Math.round((s.rate * s.durationMs) / 1000);
  const interval = 1000 / s.rate;
  await Promise.all(
    run.publishers.map(async (p, k) => {
      // Absolute schedule, staggered per publisher, so timer drift never lowers the rate.
      const start = performance.now() + (interval * k) / Math.max(1, run.publishers.length);
      for (let seq = 0; seq < perPublisher; seq++) {
        const due = start + seq * interval;
        const wait = due - performance.now();
        if (wait > 1) await Bun.sleep(wait);
        p.ws.send(payload(p.id, seq, s.size));
        run.sent++;
      }
    }),
  );
  const expectedEach = perPublisher * s.totalPublishers;
  // Wait for stragglers up to the run's timeout: under saturation deliveries lag by
  // seconds, and "lost" must mean never delivered, not merely late.
  await run.until(() => run.clients.every((c) => c.received >= expectedEach), deadline);
  run.finishedAt = now();
  return run.result(expectedEach * run.clients.length);
}

async function storm(run: Run): Promise<WorkerResult> {
  const s = run.spec;
  send({ ev: "ready", connected: 0, refused: 0 });
  const deadline = (await run.go) + s.timeoutMs;
  run.startedAt = now();
  let next = 0;
  const lane = async () => {
    while (next < s.clients && Date.now() < deadline) {
      const global = s.clientOffset + next++;
      const began = now();
      const c = await run.connect(s.urls[global % s.urls.length]!, `storm-${global}`, global, () => {});
      if (c) {
        run.clients.push(c);
        run.latency.record(now() - began);
      } else run.refused++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(s.concurrency, s.clients) }, lane));
  run.finishedAt = now();
  if (next < s.clients) run.timedOut = true;
  return run.result(s.clients);
}

async function idle(run: Run): Promise<WorkerResult> {
  const s = run.spec;
  run.startedAt = now();
  await run.connectMany(s.clients, s.clientOffset, s.urls, "idle-", () => {}, run.clients);
  run.finishedAt = now();
  send({ ev: "ready", connected: run.clients.length, refused: run.refused });
  return run.result(s.clients);
}

async function privatePairs(run: Run): Promise<WorkerResult> {
  const s = run.spec;
  const pairs = Math.floor(s.clients / 2);
  const partner = (id: number) => (id % 2 === 0 ? id + 1 : id - 1);
  const rounds = new Map<number, (sentAt: number) => void>();
  const onFrame = (c: Client, frame: string) => {
    const p = extract(s.kind, frame);
    if (!p || p.publisher === c.id) return; // our own echo (bunchat confirms to the sender)
    if (c.id % 2 === 1) {
      // Responder: send the same payload straight back.
      c.ws.send(privateFrame(s.kind, `pair-${partner(c.id)}`, `L|${c.id}|${p.seq}|${p.sentAt.toFixed(3)}|`));
      return;
    }
    run.received++;
    rounds.get(c.id)?.(p.sentAt);
  };
  await run.connectMany(pairs * 2, s.clientOffset, s.urls, "pair-", onFrame, run.clients);
  send({ ev: "ready", connected: run.clients.length, refused: run.refused });
  const deadline = (await run.go) + s.timeoutMs;
  run.startedAt = now();
  const initiators = run.clients.filter((c) => c.id % 2 === 0);
  await Promise.all(
    initiators.map(async (c) => {
      for (let seq = 0; seq < s.messages && Date.now() < deadline; seq++) {
        const answered = new Promise<number>((resolve) => rounds.set(c.id, resolve));
        c.ws.send(privateFrame(s.kind, `pair-${partner(c.id)}`, payload(c.id, seq, s.size)));
        run.sent++;
        const timeout = Bun.sleep(Math.max(0, deadline - Date.now())).then(() => -1);
        const sentAt = await Promise.race([answered, timeout]);
        if (sentAt < 0) {
          run.timedOut = true;
          return;
        }
        run.latency.record(now() - sentAt);
      }
    }),
  );
  run.finishedAt = now();
  return run.result(initiators.length * s.messages);
}

const scenarios: Record<Scenario, (run: Run) => Promise<WorkerResult>> = { burst, fanout, storm, idle, private: privatePairs };

let run: Run | null = null;
process.on("message", async (message: ToWorker) => {
  if (message.cmd === "start") {
    run = new Run(message.spec);
    const result = await scenarios[message.spec.scenario](run);
    send({ ev: "done", result });
  } else if (message.cmd === "go") {
    run?.start(message.at);
  } else if (message.cmd === "stop") {
    run?.closeAll();
    setTimeout(() => process.exit(0), 200);
  }
});
// Never outlive the coordinator.
process.on("disconnect", () => process.exit(0));

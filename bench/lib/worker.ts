// One load-generator process: it holds a share of the clients of a scenario and reports
// counts and a latency histogram to the coordinator (bench/load.ts) over IPC. Several of
// these run at once so the generator uses every core.
import { Histogram } from "./histogram.ts";
import { leanConnect, type LeanSocket, type Readiness } from "./lean-client.ts";
import { extract, isWelcome, now, payload, privateFrame, type TargetKind } from "./wire.ts";

export type Scenario = "burst" | "fanout" | "storm" | "idle" | "private" | "scale";

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
  /** scale: clients spread over this many rooms (`<room>-<n>`; one room keeps `room`). */
  rooms: number;
  /** Suffix of every client name in this run (the same in every worker). */
  runId: string;
  /** Pad payloads with prose (compresses like chat) instead of one repeated letter. */
  prose?: boolean;
}

/** What every run counts, per worker and in total. */
export interface DeliveryCounts {
  connected: number;
  refused: number;
  /** Clients the server disconnected while the scenario ran (e.g. a backpressure policy). */
  closedEarly: number;
  /** Of those, closed with 1008 (policy: bunchat's rate-abuse close). */
  closedByPolicy: number;
  /** `error {code: "rate_limited"}` frames: messages the server's rate limit dropped. */
  rateLimited: number;
  sent: number;
  received: number;
  expected: number;
  duplicates: number;
  reordered: number;
}

export interface WorkerResult extends DeliveryCounts {
  worker: number;
  /**
   * Messages this worker's clients sent that the server never accepted (rate-limited, or
   * cut off by a 1008 close): nobody can receive them, so they are not "lost".
   */
  dropped: number;
  /** Clients whose deliveries `expected` covers (burst, fanout); 0 where drops are local. */
  receivers: number;
  startedAt: number;
  finishedAt: number;
  latency: { counts: number[]; max: number };
  timedOut: boolean;
}

export type ToWorker =
  | { cmd: "start"; spec: WorkerSpec }
  | { cmd: "go"; at: number }
  /** Every worker's dropped count so far, so each knows what will never arrive. */
  | { cmd: "dropped"; byWorker: number[] }
  | { cmd: "stop" };
export type FromWorker =
  | { ev: "ready"; connected: number; refused: number }
  | { ev: "progress"; sent: number; received: number; connected: number; dropped: number }
  | { ev: "done"; result: WorkerResult };

const send = (m: FromWorker) => process.send?.(m);

interface Client {
  ws: WebSocket;
  name: string;
  id: number;
  /** Highest seq seen per publisher; -1 = none. */
  last: Int32Array;
  received: number;
  /** Messages this client is to send, and how many of them came back to it (bunchat echoes the sender's own). */
  nominal: number;
  own: number;
  /** Its messages the rate limit dropped. */
  limited: number;
  closedByPolicy: boolean;
}

const RATE_LIMITED = /^\{"type":"error".*"code":"rate_limited"/;

class Run {
  readonly latency = new Histogram();
  readonly clients: Client[] = [];
  readonly publishers: Client[] = [];
  /** storm: connections held by the lean client (they only connect). */
  readonly held: LeanSocket[] = [];
  sent = 0;
  received = 0;
  duplicates = 0;
  reordered = 0;
  refused = 0;
  /** Clients the server closed while the scenario ran (e.g. a backpressure policy). */
  closedEarly = 0;
  closedByPolicy = 0;
  rateLimited = 0;
  /** Other workers' dropped counts, as the coordinator last relayed them. */
  droppedElsewhere = 0;
  /** Per scenario: messages of this worker's clients the server never accepted. */
  dropped: () => number = () => this.senderDrops(this.clients);
  /** Per scenario: a client's message was rate-limited or it was closed by policy. */
  onDrop: (c: Client) => void = () => {};
  stopping = false;
  startedAt = 0;
  finishedAt = 0;
  timedOut = false;
  private goResolve!: (at: number) => void;
  readonly go = new Promise<number>((r) => (this.goResolve = r));
  private progressTimer: ReturnType<typeof setInterval>;

  constructor(readonly spec: WorkerSpec) {
    this.progressTimer = setInterval(() => send({ ev: "progress", sent: this.sent, received: this.received, connected: this.connected(), dropped: this.dropped() }), 250);
  }

  start(at: number): void {
    this.goResolve(at);
  }

  url(base: string, name: string, room = this.spec.room): string {
    const u = new URL(base);
    // Names are held for a while after a client leaves (NAME_GRACE): each run uses its own.
    u.searchParams.set("name", `${name}-${this.spec.runId}`);
    u.searchParams.set("room", room);
    return u.toString();
  }

  /** Open one client; resolves when it is usable (bunchat: welcome; peers: open). */
  connect(base: string, name: string, id: number, onFrame: (c: Client, frame: string) => void, room?: string): Promise<Client | null> {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url(base, name, room));
      // One slot per publisher it hears from (scale: only its room's, kept in slot 0).
      const slots = this.spec.scenario === "scale" ? 1 : Math.max(1, this.spec.totalPublishers);
      const client: Client = { ws, name, id, last: new Int32Array(slots).fill(-1), received: 0, nominal: 0, own: 0, limited: 0, closedByPolicy: false };
      // settled: the promise is resolved; connected: it resolved with a usable client.
      let settled = false;
      let connected = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        connected = ok;
        resolve(ok ? client : null);
      };
      ws.onopen = () => {
        if (this.spec.kind === "peer") done(true);
      };
      ws.onmessage = (e) => {
        const frame = e.data as string;
        if (!settled && isWelcome(this.spec.kind, frame)) return done(true);
        if (RATE_LIMITED.test(frame)) {
          client.limited++;
          this.rateLimited++;
          return this.onDrop(client);
        }
        onFrame(client, frame);
      };
      ws.onerror = () => done(false);
      ws.onclose = (e) => {
        if (connected && !this.stopping) {
          this.closedEarly++;
          if (e.code === 1008) {
            this.closedByPolicy++;
            client.closedByPolicy = true;
            this.onDrop(client);
          }
        }
        done(false);
      };
    });
  }

  /** Count a delivery: latency, duplicates, order per publisher (`slot`: where its last seq is kept). */
  deliver(c: Client, frame: string, slot?: number): void {
    const p = extract(this.spec.kind, frame);
    if (!p) return;
    if (p.publisher === c.id) c.own++;
    slot ??= p.publisher;
    const last = c.last[slot] ?? -1;
    if (p.seq === last) {
      this.duplicates++;
      return;
    }
    if (p.seq < last) this.reordered++;
    else c.last[slot] = p.seq;
    c.received++;
    this.received++;
    this.latency.record(now() - p.sentAt);
  }

  async connectMany(count: number, offset: number, urls: string[], prefix: string, onFrame: (c: Client, f: string) => void, into: Client[], roomOf?: (global: number) => string): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < count) {
        const i = next++;
        const global = offset + i;
        const c = await this.connect(urls[global % urls.length]!, `${prefix}${global}`, global, onFrame, roomOf?.(global));
        if (c) into.push(c);
        else this.refused++;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.spec.concurrency, count)) }, lane));
  }

  /**
   * What senders lost to the server's policy: each rate-limited message; and for a sender
   * closed with 1008, everything of its own that never came back to it (the server echoes
   * a sender's accepted messages to it, in order, before it closes the connection).
   */
  senderDrops(senders: Client[]): number {
    let n = 0;
    for (const c of senders) n += c.closedByPolicy ? Math.max(c.limited, c.nominal - c.own) : c.limited;
    return n;
  }

  droppedTotal(): number {
    return this.dropped() + this.droppedElsewhere;
  }

  /** Clients whose deliveries count: one the server closed for abuse receives nothing more. */
  receivers(): Client[] {
    return this.clients.filter((c) => !c.closedByPolicy);
  }

  /** Every receiver has every message the server accepted, counting drops everywhere. */
  allDelivered(nominalEach: number): boolean {
    const want = nominalEach - this.droppedTotal();
    return this.receivers().every((c) => c.received >= want);
  }

  result(expected: number, receivers = 0, received = this.received): WorkerResult {
    clearInterval(this.progressTimer);
    return {
      worker: this.spec.worker,
      connected: this.connected(),
      refused: this.refused,
      closedEarly: this.closedEarly,
      closedByPolicy: this.closedByPolicy,
      rateLimited: this.rateLimited,
      dropped: this.dropped(),
      receivers,
      sent: this.sent,
      received,
      expected,
      duplicates: this.duplicates,
      reordered: this.reordered,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
      latency: this.latency.toJSON(),
      timedOut: this.timedOut,
    };
  }

  connected(): number {
    return this.clients.length + this.publishers.length + this.held.length;
  }

  closeAll(): void {
    this.stopping = true;
    for (const c of [...this.clients, ...this.publishers]) c.ws.close();
    for (const socket of this.held) socket.close();
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
  for (const c of run.clients) c.nominal = s.messages;
  await Promise.all(
    run.clients.map((c) => {
      let seq = 0;
      // A client the server closed for abuse sends no more (its rest counts as dropped).
      return sendPaced(c.ws, () => (seq < s.messages && !c.closedByPolicy ? payload(c.id, seq++, s.size, s.prose) : null), () => run.sent++);
    }),
  );
  await run.until(() => run.allDelivered(expectedEach), deadline);
  run.finishedAt = now();
  return receiversResult(run, expectedEach);
}

/** burst and fanout: each remaining receiver expects every message; drops are settled in the coordinator. */
function receiversResult(run: Run, expectedEach: number): WorkerResult {
  const receivers = run.receivers();
  return run.result(expectedEach * receivers.length, receivers.length, receivers.reduce((n, c) => n + c.received, 0));
}

async function fanout(run: Run): Promise<WorkerResult> {
  const s = run.spec;
  await run.connectMany(s.clients, s.clientOffset, s.urls, "sub-", (c, f) => run.deliver(c, f), run.clients);
  // Publishers count their own messages coming back: what the server accepted.
  const ownEcho = (c: Client, f: string) => {
    if (extract(s.kind, f)?.publisher === c.id) c.own++;
  };
  await run.connectMany(s.publishers, s.publisherOffset, s.publisherUrls, "pub-", ownEcho, run.publishers);
  run.dropped = () => run.senderDrops(run.publishers);
  send({ ev: "ready", connected: run.clients.length + run.publishers.length, refused: run.refused });
  const goAt = await run.go;
  const deadline = goAt + s.durationMs + s.timeoutMs;
  run.startedAt = now();
  const perPublisher = Math.round((s.rate * s.durationMs) / 1000);
  const interval = 1000 / s.rate;
  for (const p of run.publishers) p.nominal = perPublisher;
  await Promise.all(
    run.publishers.map(async (p, k) => {
      // Absolute schedule, staggered per publisher, so timer drift never lowers the rate.
      const start = performance.now() + (interval * k) / Math.max(1, run.publishers.length);
      for (let seq = 0; seq < perPublisher && !p.closedByPolicy; seq++) {
        const due = start + seq * interval;
        const wait = due - performance.now();
        if (wait > 1) await Bun.sleep(wait);
        p.ws.send(payload(p.id, seq, s.size, s.prose));
        run.sent++;
      }
    }),
  );
  const expectedEach = perPublisher * s.totalPublishers;
  // Wait for stragglers up to the run's timeout: under saturation deliveries lag by
  // seconds, and "lost" must mean never delivered, not merely late.
  await run.until(() => run.allDelivered(expectedEach), deadline);
  run.finishedAt = now();
  return receiversResult(run, expectedEach);
}

/**
 * Connects as fast as the server admits them, each held once made. The lean client does
 * the connecting: a storm measures the server, so the generator must cost it little CPU.
 */
async function storm(run: Run): Promise<WorkerResult> {
  const s = run.spec;
  const ready: Readiness = s.kind === "peer" ? "open" : (text) => isWelcome(s.kind, text);
  const closedEarly = () => {
    if (!run.stopping) run.closedEarly++;
  };
  send({ ev: "ready", connected: 0, refused: 0 });
  const deadline = (await run.go) + s.timeoutMs;
  run.startedAt = now();
  let next = 0;
  const lane = async () => {
    while (next < s.clients && Date.now() < deadline) {
      const global = s.clientOffset + next++;
      const began = now();
      // Each connect may take what is left of the run: one the server never answers ends the run, not the lane.
      const socket = await leanConnect(run.url(s.urls[global % s.urls.length]!, `storm-${global}`), ready, { onClose: closedEarly, timeoutMs: deadline - Date.now() });
      if (socket && run.stopping) socket.close();
      else if (socket) {
        run.held.push(socket);
        run.latency.record(now() - began);
      } else if (Date.now() >= deadline) run.timedOut = true;
      else run.refused++;
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
  // An initiator's pending round: resolved with the echo's send time, or DROPPED when the
  // server's rate limit dropped either message of the round (pairs live in one worker).
  const DROPPED = -2;
  const rounds = new Map<number, (sentAt: number) => void>();
  let droppedRounds = 0;
  run.dropped = () => droppedRounds;
  run.onDrop = (c) => rounds.get(c.id % 2 === 0 ? c.id : partner(c.id))?.(DROPPED);
  const onFrame = (c: Client, frame: string) => {
    const p = extract(s.kind, frame);
    if (!p || p.publisher === c.id) return; // our own echo (bunchat confirms to the sender)
    if (c.id % 2 === 1) {
      // Responder: send the same payload straight back.
      c.ws.send(privateFrame(s.kind, `pair-${partner(c.id)}-${s.runId}`, `L|${c.id}|${p.seq}|${p.sentAt.toFixed(3)}|`));
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
  const byId = new Map(run.clients.map((c) => [c.id, c]));
  await Promise.all(
    initiators.map(async (c) => {
      const responder = byId.get(partner(c.id));
      for (let seq = 0; seq < s.messages && Date.now() < deadline; seq++) {
        if (c.closedByPolicy || responder?.closedByPolicy) {
          droppedRounds += s.messages - seq;
          return;
        }
        const answered = new Promise<number>((resolve) => rounds.set(c.id, resolve));
        c.ws.send(privateFrame(s.kind, `pair-${partner(c.id)}-${s.runId}`, payload(c.id, seq, s.size)));
        run.sent++;
        const timeout = Bun.sleep(Math.max(0, deadline - Date.now())).then(() => -1);
        const sentAt = await Promise.race([answered, timeout]);
        if (sentAt === DROPPED) {
          droppedRounds++;
          continue;
        }
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

/**
 * scale: hold many connections, then fan out. Clients connect (spread over the URLs, and
 * over `rooms` rooms), report ready, and wait while the coordinator holds them. Then with
 * one room the first client sends `messages` messages that every client must get; with
 * many rooms each room's first client publishes at `rate` (all rooms together) for the
 * duration, and every client must get all of its room's messages.
 */
async function scale(run: Run): Promise<WorkerResult> {
  const s = run.spec;
  const rooms = Math.max(1, s.rooms);
  const roomOf = (global: number) => (rooms === 1 ? s.room : `${s.room}-${global % rooms}`);
  await run.connectMany(s.clients, s.clientOffset, s.urls, "scale-", (c, f) => run.deliver(c, f, 0), run.clients, roomOf);
  send({ ev: "ready", connected: run.clients.length, refused: run.refused });
  const goAt = await run.go;
  run.startedAt = now();
  // Room r's publisher is global client r: whoever holds it sends.
  const publishers = run.clients.filter((c) => c.id < rooms);
  const perRoom = rooms === 1 ? s.messages : Math.max(1, Math.round((s.rate / rooms) * (s.durationMs / 1000)));
  const interval = rooms === 1 ? 200 : (1000 * rooms) / Math.max(1, s.rate);
  const deadline = goAt + (rooms === 1 ? perRoom * interval : s.durationMs) + s.timeoutMs;
  await Promise.all(
    publishers.map(async (p) => {
      const start = performance.now() + (interval * p.id) / rooms;
      for (let seq = 0; seq < perRoom; seq++) {
        const wait = start + seq * interval - performance.now();
        if (wait > 1) await Bun.sleep(wait);
        p.ws.send(payload(p.id, seq, s.size, s.prose));
        run.sent++;
      }
    }),
  );
  await run.until(() => run.clients.every((c) => c.received >= perRoom), deadline);
  run.finishedAt = now();
  return run.result(perRoom * run.clients.length, run.clients.length);
}

const scenarios: Record<Scenario, (run: Run) => Promise<WorkerResult>> = { burst, fanout, storm, idle, private: privatePairs, scale };

let run: Run | null = null;
process.on("message", async (message: ToWorker) => {
  if (message.cmd === "start") {
    run = new Run(message.spec);
    const result = await scenarios[message.spec.scenario](run);
    send({ ev: "done", result });
  } else if (message.cmd === "go") {
    run?.start(message.at);
  } else if (message.cmd === "dropped") {
    if (run) run.droppedElsewhere = message.byWorker.reduce((n, d, w) => (w === run!.spec.worker ? n : n + d), 0);
  } else if (message.cmd === "stop") {
    run?.closeAll();
    setTimeout(() => process.exit(0), 200);
  }
});
// Never outlive the coordinator.
process.on("disconnect", () => process.exit(0));

// The Bun-native load generator: runs where k6 is not installed, spreads clients over
// several worker processes, checks every delivery (loss, duplicates, order), and stops by
// itself (every loop is bounded in count and time).
//
//   bun bench/load.ts <burst|fanout|storm|idle|private|scale> --url ws://127.0.0.1:3000/ws [options]
import { parseArgs } from "node:util";
import { Histogram } from "./lib/histogram.ts";
import { loopbackBytes, treeCpuSeconds as cpuSeconds, treeRssKb as rssKb } from "./lib/process.ts";
import type { TargetKind } from "./lib/wire.ts";
import type { DeliveryCounts, FromWorker, Scenario, ToWorker, WorkerResult, WorkerSpec } from "./lib/worker.ts";

export interface LoadOptions {
  scenario: Scenario;
  kind: TargetKind;
  urls: string[];
  publisherUrls?: string[];
  clients: number;
  messages: number;
  publishers: number;
  rate: number;
  durationSeconds: number;
  size: number;
  workers: number;
  timeoutSeconds: number;
  concurrency: number;
  room: string;
  /** scale: rooms the clients spread over, and seconds to hold them before the fan-out. */
  rooms?: number;
  holdSeconds?: number;
  /** Pad payloads with prose (compresses like chat text) instead of one repeated letter. */
  prose?: boolean;
  /** Server pid (a --workers supervisor counts with its workers), to read memory and CPU from /proc. */
  pid?: number;
  progress?: boolean;
}

export interface LoadResult extends DeliveryCounts {
  scenario: Scenario;
  kind: TargetKind;
  url: string;
  clients: number;
  /** Messages the server accepted that a client never received (see `dropped`). */
  lost: number;
  /** Messages the server never accepted: rate-limited, or cut off by a 1008 close. */
  dropped: number;
  seconds: number;
  /** burst/fanout: deliveries per second; storm: connects per second; private: round trips per second. */
  perSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  bytesPerConnection?: number;
  /** Server CPU seconds (user + system) spent during the run, when --pid is given. */
  serverCpuSeconds?: number;
  /** Bytes over the loopback interface during the run (frames as sent, compressed or not; headers included). */
  loopbackBytes?: number;
  /** scale: seconds until every client was connected, and the connects per second that made. */
  connectSeconds?: number;
  connectsPerSecond?: number;
  /** scale: server memory (all its processes) with every client connected, bytes. */
  serverRssBytes?: number;
  /**
   * scale: the same at the end of the hold. Right after a storm of handshakes the memory
   * still holds their garbage; after the hold, what holding the connections takes.
   */
  serverRssHeldBytes?: number;
  bytesPerConnectionHeld?: number;
  heldSeconds?: number;
  timedOut: boolean;
}

export const DEFAULT_URL = "ws://127.0.0.1:3000/ws";
const DEFAULT_TIMEOUT_SECONDS = 60;

/**
 * Defaults that pass against `bun run src/server.ts` with its defaults: a client sends at
 * most RATE_BURST (40) messages at once and at most RATE_LIMIT (20) per second, and no
 * run holds more than MAX_CONNECTIONS (10,000). Benchmarks raise them against a server
 * started with RATE_LIMIT=0 (bench/compare.ts passes its own sizes).
 */
export const DEFAULTS: Record<Scenario, Partial<LoadOptions>> = {
  burst: { clients: 32, messages: 30, size: 64 },
  fanout: { clients: 1000, publishers: 4, rate: 40, durationSeconds: 10, size: 64 },
  storm: { clients: 5000, concurrency: 256 },
  idle: { clients: 5000, concurrency: 256 },
  private: { clients: 200, messages: 30, size: 64 },
  scale: { clients: 1000, messages: 1, rooms: 1, holdSeconds: 5, rate: 100, durationSeconds: 10, size: 64, concurrency: 256 },
};

/** Sockets one generator process holds at most: below the 20,000 files a process may hold. */
const SOCKETS_PER_GENERATOR = 15_000;

function split(total: number, parts: number, index: number): { count: number; offset: number } {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  const count = base + (index < extra ? 1 : 0);
  const offset = index * base + Math.min(index, extra);
  return { count, offset };
}

/** Thrown before any client starts when a target's port is closed. */
export class NothingListening extends Error {}

/** One TCP connect per target: "nothing listening" is clearer than N refused clients. */
async function assertListening(urls: string[]): Promise<void> {
  for (const url of new Set(urls)) {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol === "wss:" ? 443 : 80));
    try {
      (await Bun.connect({ hostname: u.hostname.replace(/^\[|\]$/g, ""), port, socket: { data() {} } })).end();
    } catch {
      throw new NothingListening(`nothing listening at ${url}`);
    }
  }
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  await assertListening([...o.urls, ...(o.publisherUrls ?? [])]);
  // A private pair must live in one worker, so split pairs, not clients.
  const unit = o.scenario === "private" ? 2 : 1;
  const needed = Math.ceil(o.clients / SOCKETS_PER_GENERATOR);
  const runId = Math.random().toString(36).slice(2, 6);
  const workers = Math.max(1, needed, Math.min(o.workers, Math.floor(o.clients / unit) || 1));
  const procs = Array.from({ length: workers }, (_, w) => {
    const share = split(Math.floor(o.clients / unit), workers, w);
    const pubs = split(o.publishers, workers, w);
    const spec: WorkerSpec = {
      scenario: o.scenario,
      kind: o.kind,
      urls: o.urls,
      publisherUrls: o.publisherUrls ?? o.urls,
      worker: w,
      clients: share.count * unit,
      clientOffset: share.offset * unit,
      totalClients: o.clients,
      messages: o.messages,
      publishers: o.scenario === "fanout" ? pubs.count : 0,
      publisherOffset: o.scenario === "fanout" ? pubs.offset : 0,
      totalPublishers: o.scenario === "fanout" ? o.publishers : o.scenario === "burst" ? o.clients : o.clients,
      // fanout paces each publisher; scale's rate is all rooms together, whatever the publishers option says.
      rate: o.scenario === "fanout" && o.publishers > 0 ? o.rate / o.publishers : o.rate,
      durationMs: o.durationSeconds * 1000,
      size: o.size,
      timeoutMs: o.timeoutSeconds * 1000,
      concurrency: Math.max(1, Math.ceil(o.concurrency / workers)),
      room: o.room,
      rooms: o.rooms ?? 1,
      runId,
      prose: o.prose,
    };
    const state = { ready: false, done: null as WorkerResult | null, progress: { sent: 0, received: 0, connected: 0, dropped: 0 } };
    const proc = Bun.spawn(["bun", `${import.meta.dir}/lib/worker.ts`], {
      stdio: ["ignore", "inherit", "inherit"],
      ipc(message: FromWorker) {
        if (message.ev === "ready") state.ready = true;
        else if (message.ev === "progress") {
          const changed = message.dropped !== state.progress.dropped;
          state.progress = message;
          if (changed) relayDropped();
        } else if (message.ev === "done") {
          state.done = message.result;
          // A worker may finish the moment its last drop happens, before reporting it.
          if (message.result.dropped !== state.progress.dropped) {
            state.progress.dropped = message.result.dropped;
            relayDropped();
          }
        }
      },
    });
    return { proc, spec, state };
  });
  // What the server dropped from one worker's clients never reaches the others either:
  // tell every worker, so none waits for it until the timeout.
  const relayDropped = () => {
    const byWorker = procs.map((w) => w.state.progress.dropped);
    for (const w of procs) {
      try {
        w.proc.send({ cmd: "dropped", byWorker } satisfies ToWorker);
      } catch {
        // finished and gone
      }
    }
  };

  const hardDeadline = Date.now() + (o.timeoutSeconds + o.durationSeconds + (o.holdSeconds ?? 0) + 30) * 1000;
  const waitFor = async (what: () => boolean, label: string) => {
    while (!what()) {
      if (Date.now() > hardDeadline) throw new Error(`load: timed out waiting for ${label}`);
      await Bun.sleep(20);
    }
  };
  let progressTimer: ReturnType<typeof setInterval> | undefined;
  try {
    const rssBefore = o.pid ? (await rssKb(o.pid)) * 1024 : 0;
    const cpuAtStart = o.pid ? await cpuSeconds(o.pid) : 0;
    const startedAt = Date.now();
    for (const w of procs) w.proc.send({ cmd: "start", spec: w.spec } satisfies ToWorker);
    const connectedNow = () => procs.reduce((n, w) => n + w.state.progress.connected, 0);
    if (o.progress) {
      let lastConnected = 0;
      let lastAt = Date.now();
      let rssText = "";
      progressTimer = setInterval(() => {
        const sum = procs.reduce((acc, w) => ({ sent: acc.sent + w.state.progress.sent, received: acc.received + w.state.progress.received }), { sent: 0, received: 0 });
        const connected = connectedNow();
        const rate = ((connected - lastConnected) * 1000) / Math.max(1, Date.now() - lastAt);
        [lastConnected, lastAt] = [connected, Date.now()];
        if (o.pid) void rssKb(o.pid).then((kb) => (rssText = `  server RSS ${(kb / 1024).toFixed(0)} MiB`));
        process.stderr.write(`\r${o.scenario}: connected ${connected}/${o.clients} (${Math.round(rate)}/s)${rssText}  sent ${sum.sent}  received ${sum.received}   `);
      }, 500);
    }
    await waitFor(() => procs.every((w) => w.state.ready), "clients to connect");
    const connectSeconds = (Date.now() - startedAt) / 1000;
    let serverRssBytes: number | undefined;
    let serverRssHeldBytes: number | undefined;
    let heldSeconds: number | undefined;
    if (o.scenario === "scale") {
      // Held: every client connected and quiet. Memory is read once the last handshake settled.
      const holdFrom = Date.now();
      await Bun.sleep(Math.min(1000, (o.holdSeconds ?? 0) * 1000));
      if (o.pid) serverRssBytes = (await rssKb(o.pid)) * 1024;
      await Bun.sleep(Math.max(0, (o.holdSeconds ?? 0) * 1000 - (Date.now() - holdFrom)));
      if (o.pid) serverRssHeldBytes = (await rssKb(o.pid)) * 1024;
      heldSeconds = (Date.now() - holdFrom) / 1000;
    }
    const cpuBefore = o.pid ? (o.scenario === "scale" ? cpuAtStart : await cpuSeconds(o.pid)) : 0;
    const wireBefore = await loopbackBytes();
    const goAt = Date.now();
    for (const w of procs) w.proc.send({ cmd: "go", at: goAt } satisfies ToWorker);
    await waitFor(() => procs.every((w) => w.state.done), "the scenario to finish");
    let bytesPerConnection: number | undefined;
    const results = procs.map((w) => w.state.done!);
    if (o.scenario === "idle" && o.pid) {
      await Bun.sleep(1000); // let the server settle after the last handshake
      const connected = results.reduce((n, r) => n + r.connected, 0);
      bytesPerConnection = connected > 0 ? (((await rssKb(o.pid)) * 1024) - rssBefore) / connected : 0;
    }
    if (o.scenario === "scale" && serverRssBytes !== undefined) {
      const connected = results.reduce((n, r) => n + r.connected, 0);
      bytesPerConnection = connected > 0 ? (serverRssBytes - rssBefore) / connected : 0;
    }
    const result = aggregate(o, results, bytesPerConnection);
    if (o.pid) result.serverCpuSeconds = (await cpuSeconds(o.pid)) - cpuBefore;
    result.loopbackBytes = (await loopbackBytes()) - wireBefore;
    if (o.scenario === "scale") {
      result.connectSeconds = connectSeconds;
      result.connectsPerSecond = result.connected / connectSeconds;
      result.serverRssBytes = serverRssBytes;
      result.serverRssHeldBytes = serverRssHeldBytes;
      if (serverRssHeldBytes !== undefined && result.connected > 0) result.bytesPerConnectionHeld = (serverRssHeldBytes - rssBefore) / result.connected;
      result.heldSeconds = heldSeconds;
    }
    return result;
  } finally {
    if (progressTimer) {
      clearInterval(progressTimer);
      process.stderr.write("\n");
    }
    for (const w of procs) {
      try {
        w.proc.send({ cmd: "stop" } satisfies ToWorker);
      } catch {
        // already gone
      }
    }
    await Promise.race([Promise.all(procs.map((w) => w.proc.exited)), Bun.sleep(3000)]);
    for (const w of procs) w.proc.kill("SIGKILL");
  }
}

function aggregate(o: LoadOptions, results: WorkerResult[], bytesPerConnection?: number): LoadResult {
  const latency = new Histogram();
  for (const r of results) latency.merge(r.latency);
  const sum = (f: (r: WorkerResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const started = Math.min(...results.map((r) => r.startedAt));
  const finished = Math.max(...results.map((r) => r.finishedAt));
  const seconds = Math.max(0.001, (finished - started) / 1000);
  const received = sum((r) => r.received);
  const dropped = sum((r) => r.dropped);
  // A dropped message reaches no receiver: burst and fanout expect it nowhere; private's
  // drops are rounds that never completed.
  const expected = o.scenario === "private" ? sum((r) => r.expected) - dropped : sum((r) => r.expected - r.receivers * dropped);
  const connected = sum((r) => r.connected);
  const perSecond = (o.scenario === "storm" || o.scenario === "idle" ? connected : received) / seconds;
  return {
    scenario: o.scenario,
    kind: o.kind,
    url: o.urls[0]!,
    clients: o.clients,
    connected,
    refused: sum((r) => r.refused),
    closedEarly: sum((r) => r.closedEarly),
    closedByPolicy: sum((r) => r.closedByPolicy),
    rateLimited: sum((r) => r.rateLimited),
    dropped,
    sent: sum((r) => r.sent),
    received,
    expected,
    lost: o.scenario === "storm" || o.scenario === "idle" ? o.clients - connected : Math.max(0, expected - received),
    duplicates: sum((r) => r.duplicates),
    reordered: sum((r) => r.reordered),
    seconds,
    perSecond,
    latencyMs: { p50: latency.percentile(50), p90: latency.percentile(90), p99: latency.percentile(99), max: latency.max },
    bytesPerConnection,
    timedOut: results.some((r) => r.timedOut),
  };
}

export function formatResult(r: LoadResult): string {
  const rows: [string, string][] = [
    ["scenario", `${r.scenario} against ${r.kind} at ${r.url}`],
    ["clients", `${r.clients} (connected ${r.connected}, refused ${r.refused}, closed by server ${r.closedEarly})`],
    ["sent / received / expected", `${r.sent} / ${r.received} / ${r.expected}`],
    ["lost / duplicates / reordered", `${r.lost} / ${r.duplicates} / ${r.reordered}`],
    ["rate-limited / closed with 1008", `${r.rateLimited} / ${r.closedByPolicy}`],
    ["seconds", r.seconds.toFixed(2)],
    [r.scenario === "storm" || r.scenario === "idle" ? "connects/s" : r.scenario === "private" ? "round trips/s" : "deliveries/s", Math.round(r.perSecond).toLocaleString("en-US")],
    ["latency p50 / p90 / p99 / max (ms)", `${r.latencyMs.p50.toFixed(2)} / ${r.latencyMs.p90.toFixed(2)} / ${r.latencyMs.p99.toFixed(2)} / ${r.latencyMs.max.toFixed(2)}`],
  ];
  if (r.connectSeconds !== undefined) rows.push(["connect phase", `${r.connectSeconds.toFixed(1)} s (${Math.round(r.connectsPerSecond ?? 0).toLocaleString("en-US")} connects/s), then held ${r.heldSeconds?.toFixed(1) ?? "?"} s`]);
  if (r.serverRssBytes !== undefined) rows.push(["server memory, all connected", `${(r.serverRssBytes / 1024 / 1024).toFixed(0)} MiB`]);
  if (r.serverRssHeldBytes !== undefined) rows.push(["server memory, end of the hold", `${(r.serverRssHeldBytes / 1024 / 1024).toFixed(0)} MiB (${((r.bytesPerConnectionHeld ?? 0) / 1024).toFixed(2)} KiB per connection)`]);
  if (r.serverCpuSeconds !== undefined) rows.push(["server CPU seconds", r.serverCpuSeconds.toFixed(2)]);
  if (r.bytesPerConnection !== undefined) rows.push(["server memory per connection", `${(r.bytesPerConnection / 1024).toFixed(2)} KiB`]);
  if (r.timedOut) rows.push(["NOTE", "timed out before every expected frame arrived"]);
  const policy = rateLimitNote(r);
  if (policy) rows.push(["NOTE", policy]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}

/**
 * Each URL on 127.0.0.1 repeated on 127.0.0.2 … 127.0.0.N: one client address reaches
 * about 28,000 connections to one server address (the ephemeral port range), so large
 * runs spread over several server addresses.
 */
export function spreadOver(urls: string[], addresses: number): string[] {
  if (addresses <= 1) return urls;
  const out: string[] = [];
  for (let a = 1; a <= addresses; a++) {
    for (const url of urls) {
      const u = new URL(url);
      if (u.hostname === "127.0.0.1" || u.hostname === "localhost") u.hostname = `127.0.0.${a}`;
      out.push(u.toString());
    }
  }
  return [...new Set(out)];
}

/** The line a run gets when the server's rate limit took part: it measured the limit, not the server. */
export function rateLimitNote(r: Pick<LoadResult, "dropped" | "rateLimited" | "closedByPolicy">): string | null {
  if (r.dropped === 0 && r.rateLimited === 0 && r.closedByPolicy === 0) return null;
  const closed = r.closedByPolicy > 0 ? ` and closed ${r.closedByPolicy} connection${r.closedByPolicy === 1 ? "" : "s"} (1008)` : "";
  return `the server's rate limit dropped ${Math.max(r.dropped, r.rateLimited)} messages${closed}: start it with RATE_LIMIT=0 for load tests`;
}

/** A flag's default as --help shows it: one value, or one per scenario that uses it. */
function shownDefault(field: keyof LoadOptions): string {
  const per = (Object.keys(DEFAULTS) as Scenario[]).filter((sc) => DEFAULTS[sc][field] !== undefined).map((sc) => [sc, String(DEFAULTS[sc][field])] as const);
  const values = new Set(per.map(([, v]) => v));
  return values.size === 1 ? `[${[...values][0]}]` : `[${per.map(([sc, v]) => `${sc} ${v}`).join(", ")}]`;
}

const HELP = `bun bench/load.ts <scenario> [options]

Scenarios:
  burst    N clients in one room each send M messages as fast as the server accepts;
           waits until every client has every message; delivered messages per second
  fanout   S subscribers, P publishers at R messages/s in total for D seconds; latency, loss
  storm    C connects as fast as possible; connects/s and time-to-welcome percentiles
  idle     hold C idle connections; server memory per connection (needs --pid)
  private  pairs exchange private messages; round-trip latency
  scale    connect C clients (spread over --spread addresses and --rooms rooms), hold
           them --hold seconds, then fan out: one room, M messages to everyone; many
           rooms, each room's first client publishing at R messages/s (all rooms) for D
           seconds. Connect time, server memory per connection, fan-out latency, loss.
           Uses as many generator processes as it needs (15,000 sockets each).

Options:                                                        [default]
  --url URL          ws:// URL of the target (repeat or comma-separate to spread clients)
                                                                [${DEFAULT_URL}]
  --kind K           bunchat (JSON frames) or peer (plain-text broadcast)  [bunchat]
  --clients N        clients (burst N, fanout subscribers, storm/idle connections, private 2×pairs)
                     ${shownDefault("clients")}
  --messages M       messages per client (burst) or round trips per pair (private)
                     ${shownDefault("messages")}
  --publishers P     fanout publishers                                     ${shownDefault("publishers")}
  --rate R           fanout messages per second, all publishers together   ${shownDefault("rate")}
  --duration D       fanout seconds                                        ${shownDefault("durationSeconds")}
  --size BYTES       payload size                                          ${shownDefault("size")}
  --workers W        generator processes                                   [cores: ${navigator.hardwareConcurrency}]
  --concurrency K    connects in flight (storm, idle)                      ${shownDefault("concurrency")}
  --timeout S        give up after S seconds                               [${DEFAULT_TIMEOUT_SECONDS}]
  --pid PID          server process id, to read its memory (idle)
  --room NAME        the room the clients join                             [bench]
  --rooms N          scale: rooms to spread the clients over               ${shownDefault("rooms")}
  --hold S           scale: seconds to hold every connection before fanning out ${shownDefault("holdSeconds")}
  --spread N         repeat each --url over N loopback addresses 127.0.0.1…127.0.0.N
                     (the server must listen on 0.0.0.0)                   [1]
  --json             print the result as JSON

The defaults pass against \`bun run src/server.ts\` with its defaults: each client stays
within RATE_BURST (40 at once) and RATE_LIMIT (20 messages/s), and no run holds more than
MAX_CONNECTIONS (10,000). Anything bigger measures the rate limit, not the server: start
the server with RATE_LIMIT=0 (the report says so when the limit dropped messages).

Each generator process may hold at most \`ulimit -n\` sockets (20,000 on the project's
machines), so large runs need several workers; past ~28,000 connections to one address,
pass several --url hosts (127.0.0.1, 127.0.0.2, … with the server on 0.0.0.0).`;

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Bun.argv.slice(2),
    allowPositionals: true,
    options: {
      url: { type: "string", multiple: true },
      kind: { type: "string" },
      clients: { type: "string" },
      messages: { type: "string" },
      publishers: { type: "string" },
      rate: { type: "string" },
      duration: { type: "string" },
      size: { type: "string" },
      workers: { type: "string" },
      concurrency: { type: "string" },
      timeout: { type: "string" },
      pid: { type: "string" },
      room: { type: "string" },
      rooms: { type: "string" },
      hold: { type: "string" },
      spread: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const scenario = positionals[0] as Scenario | undefined;
  if (values.help || !scenario || !(scenario in DEFAULTS)) {
    console.log(HELP);
    process.exit(values.help ? 0 : 2);
  }
  const d = DEFAULTS[scenario];
  // Options a scenario does not use still need a value; these never reach the server.
  const num = (v: string | undefined, fallback: number | undefined) => (v === undefined ? (fallback ?? 1) : Number(v));
  const urls = spreadOver((values.url ?? [DEFAULT_URL]).flatMap((u) => u.split(",")), num(values.spread, 1));
  for (const u of urls) {
    const host = new URL(u).hostname;
    if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== "localhost" && host !== "[::1]") {
      console.error(`load: refusing non-loopback target ${u}`);
      process.exit(2);
    }
  }
  let result: LoadResult;
  try {
    result = await runLoad({
      scenario,
      kind: (values.kind ?? "bunchat") as TargetKind,
      urls,
      clients: num(values.clients, d.clients),
      messages: num(values.messages, d.messages),
      publishers: num(values.publishers, d.publishers),
      rate: num(values.rate, d.rate),
      durationSeconds: num(values.duration, d.durationSeconds),
      size: num(values.size, d.size ?? 64),
      workers: num(values.workers, navigator.hardwareConcurrency),
      timeoutSeconds: num(values.timeout, DEFAULT_TIMEOUT_SECONDS),
      concurrency: num(values.concurrency, d.concurrency ?? 256),
      room: values.room ?? "bench",
      rooms: num(values.rooms, d.rooms),
      holdSeconds: num(values.hold, d.holdSeconds),
      pid: values.pid ? Number(values.pid) : undefined,
      progress: !values.json && process.stderr.isTTY === true,
    });
  } catch (error) {
    if (!(error instanceof NothingListening)) throw error;
    console.error(`load: ${error.message} (start a server: bun run src/server.ts)`);
    process.exit(2);
  }
  console.log(values.json ? JSON.stringify(result) : formatResult(result));
  const clean = result.lost === 0 && result.duplicates === 0 && result.reordered === 0 && result.closedEarly === 0 && rateLimitNote(result) === null;
  process.exit(clean ? 0 : 1);
}

// The k6 scripts are first-class even though k6 cannot be installed here: they must load
// as ES modules, import only modules k6 provides (or their shared scenario bodies), and —
// run through test/k6/adapter.ts — speak bunchat's protocol and count right: with their
// defaults against a default server they pass; a rate limit is reported as a rate limit,
// not as loss; real loss is still loss. (`bun run typecheck` checks them against @types/k6.)
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ChatServer } from "../src/app.ts";
import { runK6Script } from "./k6/adapter.ts";
import { startServer } from "./helpers/server.ts";
import { spawnServer, type ChildServer } from "./helpers/spawn-server.ts";

const BENCH = join(import.meta.dir, "..", "bench");
const ENTRIES = ["fanout.js", "connect.js", "fanout.k6-legacy.js", "connect.k6-legacy.js"].map((f) => join(BENCH, f));
const BODIES = readdirSync(join(BENCH, "k6")).filter((f) => f.endsWith(".js")).map((f) => join(BENCH, "k6", f));
const [FANOUT, CONNECT, FANOUT_LEGACY, CONNECT_LEGACY] = ENTRIES as [string, string, string, string];
// Modules a k6 script may import (k6's built-ins); nothing from npm.
const K6_BUILTINS = /^k6(\/(websockets|timers|metrics|execution|http|ws|crypto|encoding|data|net\/grpc|html|experimental\/[a-z-]+))?$/;
const ADVICE = /the server's rate limit dropped (\d+) messages: start it with RATE_LIMIT=0 for load tests$/;

let server: ChatServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

const importsOf = (source: string) => [...source.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]!);

describe("k6 scripts", () => {
  test.each([...ENTRIES, ...BODIES])("%s imports only k6 modules and the shared scenarios", async (path) => {
    const source = await Bun.file(path).text();
    const imports = importsOf(source);
    if (ENTRIES.includes(path)) expect(imports.length).toBeGreaterThan(0);
    for (const specifier of imports) {
      // Relative imports stay inside bench/k6 (k6 resolves them next to the script).
      const ok = K6_BUILTINS.test(specifier) || (specifier.startsWith("./") && join(dirname(path), specifier).startsWith(join(BENCH, "k6")));
      expect({ specifier, ok }).toEqual({ specifier, ok: true });
    }
    expect(source).not.toMatch(/\brequire\(/);
    if (ENTRIES.includes(path)) expect(source).toMatch(/^export const options = /m);
  });

  test("each entry and its legacy twin differ only in where WebSocket comes from", async () => {
    for (const [current, legacy] of [[FANOUT, FANOUT_LEGACY], [CONNECT, CONNECT_LEGACY]] as const) {
      const code = async (path: string) => (await Bun.file(path).text()).split("\n").filter((l) => !l.startsWith("//"));
      const [a, b] = [await code(current), await code(legacy)];
      expect(b).toEqual(a.map((l) => l.replace('"k6/websockets"', '"k6/experimental/websockets"')));
    }
  });
});

describe("against `bun run src/server.ts` with its defaults", () => {
  const dir = mkdtempSync(join(tmpdir(), "bunchat-k6-"));
  let child: ChildServer | null = null;
  afterAll(() => {
    child?.proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  const defaultServer = async (): Promise<string> => {
    // Only a free port: every limit, history and log setting is the default one.
    child ??= await spawnServer(["bun", join(import.meta.dir, "..", "src", "server.ts")], { PORT: "0" }, dir);
    return `ws://127.0.0.1:${child.port}/ws`;
  };

  test("fanout.js with its defaults: every message delivered, nothing rate-limited, every threshold passes", async () => {
    const run = await runK6Script(FANOUT, { URL: await defaultServer() });
    const count = (name: string) => run.metrics.aggregate(name, "count");
    expect(count("bunchat_sent")).toBe(200); // RATE 20/s for 10 s
    expect(count("bunchat_deliveries")).toBe(100 * 200);
    expect(count("bunchat_lost_messages")).toBe(0);
    expect(count("bunchat_rate_limited")).toBe(0);
    expect(count("bunchat_policy_closes")).toBe(0);
    expect(run.thresholds.map((t) => t.metric).sort()).toEqual(["bunchat_latency", "bunchat_lost_messages", "bunchat_out_of_order", "bunchat_policy_closes", "bunchat_rate_limited"]);
    for (const t of run.thresholds) expect(t).toMatchObject({ ok: true });
    expect(run.warnings).toEqual([]);
  }, 60_000);

  test("connect.js with its defaults: every connect welcomed, every threshold passes", async () => {
    const run = await runK6Script(CONNECT, { URL: await defaultServer() });
    expect(run.metrics.aggregate("bunchat_connects", "count")).toBe(1000); // 100/s for 10 s
    expect(run.metrics.aggregate("bunchat_refused", "rate")).toBe(0);
    for (const t of run.thresholds) expect(t).toMatchObject({ ok: true });
  }, 60_000);
});

describe("fanout.js counts", () => {
  const short = { SUBSCRIBERS: "2", PUBLISHERS: "1", RATE: "20", DURATION: "1", SETTLE: "1", GRACE: "1" };

  test.each([FANOUT, FANOUT_LEGACY])("%s delivers every message to every subscriber", async (script) => {
    server = await startServer({ rateLimit: 0, historyDb: "off" });
    const run = await runK6Script(script, { ...short, URL: server.wsUrl, ROOM: "k6" });
    const count = (name: string) => run.metrics.aggregate(name, "count");
    expect(count("bunchat_sent")).toBe(20);
    expect(count("bunchat_deliveries")).toBe(40);
    expect(count("bunchat_lost_messages")).toBe(0);
    expect(count("bunchat_out_of_order")).toBe(0);
    for (const t of run.thresholds) expect(t).toMatchObject({ ok: true });
    // The server saw the same traffic, and one end announcement.
    expect(server.metrics.chatMessages.value).toBe(21);
  });

  test("a tight rate limit: counted as rate-limited, with the advice, and not as lost", async () => {
    server = await startServer({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 0, historyDb: "off" });
    const run = await runK6Script(FANOUT, { ...short, URL: server.wsUrl });
    const limited = run.metrics.aggregate("bunchat_rate_limited", "count");
    expect(limited).toBeGreaterThan(0);
    expect(run.metrics.aggregate("bunchat_lost_messages", "count")).toBe(0);
    expect(run.metrics.aggregate("bunchat_deliveries", "count")).toBe(2 * (20 - limited));
    const verdict = (metric: string) => run.thresholds.find((t) => t.metric === metric)!.ok;
    expect(verdict("bunchat_rate_limited")).toBe(false);
    expect(verdict("bunchat_lost_messages")).toBe(true);
    expect(run.warnings).toHaveLength(1);
    expect(Number(ADVICE.exec(run.warnings[0]!)?.[1])).toBe(limited);
  });

  test("a 1008 close for rate abuse: counted as a policy close; what it cut off is not lost", async () => {
    server = await startServer({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 3, historyDb: "off" });
    const run = await runK6Script(FANOUT, { ...short, URL: server.wsUrl });
    expect(run.metrics.aggregate("bunchat_policy_closes", "count")).toBe(1);
    expect(run.metrics.aggregate("bunchat_lost_messages", "count")).toBe(0);
    expect(run.thresholds.find((t) => t.metric === "bunchat_policy_closes")!.ok).toBe(false);
    expect(run.warnings.some((w) => ADVICE.test(w))).toBe(true);
  });

  test("real loss is still loss: a peer that drops every fifth message fails the loss threshold", async () => {
    // A reference-peer-like broadcaster (plain text, no echo bookkeeping) that loses messages.
    let n = 0;
    const peer = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req, s) => (s.upgrade(req) ? undefined : new Response("upgrade", { status: 426 })),
      websocket: {
        open: (ws) => {
          ws.subscribe("all");
        },
        message: (ws, text) => {
          if (++n % 5 !== 0) ws.publish("all", String(text));
        },
      },
    });
    try {
      const run = await runK6Script(FANOUT, { ...short, PEER: "1", URL: `ws://127.0.0.1:${peer.port}/` });
      expect(run.metrics.aggregate("bunchat_lost_messages", "count")).toBe(2 * 4);
      expect(run.thresholds.find((t) => t.metric === "bunchat_lost_messages")!.ok).toBe(false);
      expect(run.metrics.aggregate("bunchat_rate_limited", "count")).toBe(0);
    } finally {
      peer.stop(true);
    }
  });
});

describe("connect.js counts", () => {
  test.each([CONNECT, CONNECT_LEGACY])("%s measures time to welcome and counts refusals at the admission cap", async (script) => {
    server = await startServer({ historyDb: "off" });
    const ok = await runK6Script(script, { URL: server.wsUrl, RATE: "5", DURATION: "1", HOLD: "1" });
    expect(ok.metrics.aggregate("bunchat_connects", "count")).toBe(5);
    expect(ok.metrics.aggregate("bunchat_refused", "rate")).toBe(0);
    expect(ok.metrics.aggregate("bunchat_time_to_welcome", "count")).toBe(5);
    for (const t of ok.thresholds) expect(t).toMatchObject({ ok: true });
    await server.stop();

    server = await startServer({ historyDb: "off", maxConnections: 3 });
    const capped = await runK6Script(script, { URL: server.wsUrl, RATE: "6", DURATION: "1", HOLD: "2" });
    expect(capped.metrics.aggregate("bunchat_connects", "count")).toBe(3);
    expect(capped.metrics.aggregate("bunchat_refused", "rate")).toBeCloseTo(0.5, 5);
    expect(capped.thresholds.find((t) => t.metric === "bunchat_refused")!.ok).toBe(false);
  });
});

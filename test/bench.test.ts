// Smoke test of the benchmark harness at tiny sizes (the full benchmarks never run in CI):
// every load.ts scenario against bunchat, both reference peers start and answer, and
// compare.ts produces its JSON and SVG.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runLoad, spreadOver, type LoadOptions } from "../bench/load.ts";
import { TARGETS, workersTarget, type RunningTarget } from "../bench/lib/targets.ts";
import { redisAvailable } from "./helpers/tools.ts";

// The two-node target needs redis-server; without it compare.ts runs the other targets.
const REDIS = await redisAvailable();
const COMPARED = ["bunchat", "bunchat+history", "bare-bun", "bare-bun-framed", "ws-node", ...(REDIS ? ["bunchat-2nodes"] : [])];

const tiny: Record<string, Partial<LoadOptions>> = {
  burst: { clients: 4, messages: 50 },
  fanout: { clients: 6, publishers: 2, rate: 40, durationSeconds: 1 },
  storm: { clients: 40 },
  idle: { clients: 40 },
  private: { clients: 4, messages: 10 },
};

function options(target: RunningTarget, scenario: keyof typeof tiny): LoadOptions {
  return {
    scenario: scenario as LoadOptions["scenario"], kind: target.kind, urls: target.wsUrls, clients: 4, messages: 10, publishers: 1,
    rate: 20, durationSeconds: 1, size: 64, workers: 2, timeoutSeconds: 20, concurrency: 16, room: "smoke", pid: target.pid,
    ...tiny[scenario],
  };
}

describe("load generator", () => {
  let bunchat: RunningTarget;
  beforeAll(async () => {
    bunchat = await TARGETS["bunchat+history"]!.start();
  });
  afterAll(async () => {
    await bunchat?.stop();
  });

  test.each(Object.keys(tiny))("%s against bunchat: no loss, no duplicates, in order", async (scenario) => {
    const r = await runLoad(options(bunchat, scenario as keyof typeof tiny));
    expect(r).toMatchObject({ lost: 0, duplicates: 0, reordered: 0, closedEarly: 0, refused: 0, timedOut: false });
    expect(r.connected).toBeGreaterThan(0);
    if (scenario === "burst") expect(r.received).toBe(4 * 4 * 50);
    if (scenario === "fanout") expect(r.received).toBe(6 * 40);
    if (scenario === "private") expect(r.received).toBe(2 * 10);
    if (scenario === "idle") expect(r.bytesPerConnection).toBeDefined();
    expect(r.serverCpuSeconds).toBeGreaterThanOrEqual(0);
  });
});

describe.skipIf(!REDIS)("scale across workers", () => {
  test("2 workers, clients over two addresses: held, then one message reaches all of them; many rooms chat with zero loss", async () => {
    const cluster = await workersTarget("smoke-workers2", 2, { history: true, host: "0.0.0.0" }).start();
    try {
      const base = { ...options(cluster, "burst"), scenario: "scale" as const, urls: spreadOver(cluster.wsUrls, 2), clients: 300, holdSeconds: 1, messages: 1, timeoutSeconds: 30, concurrency: 32 };
      const one = await runLoad(base);
      expect(one).toMatchObject({ connected: 300, refused: 0, lost: 0, duplicates: 0, reordered: 0, received: 300, timedOut: false });
      expect(one.serverRssBytes).toBeGreaterThan(0);
      expect(one.bytesPerConnection).toBeGreaterThan(0);
      const rooms = await runLoad({ ...base, rooms: 10, rate: 50, durationSeconds: 1, publishers: 4 }); // rate is all rooms together: publishers does not divide it
      expect(rooms).toMatchObject({ connected: 300, lost: 0, duplicates: 0, reordered: 0, timedOut: false });
      expect(rooms.received).toBe(300 * 5);
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

describe("reference peers", () => {
  test.each(["bare-bun", "ws-node"])("%s starts and carries a burst and private pairs", async (name) => {
    const peer = await TARGETS[name]!.start();
    try {
      const burst = await runLoad(options(peer, "burst"));
      expect(burst).toMatchObject({ lost: 0, duplicates: 0, reordered: 0 });
      expect(burst.received).toBe(4 * 4 * 50);
      const pairs = await runLoad(options(peer, "private"));
      expect(pairs.received).toBe(20);
    } finally {
      await peer.stop();
    }
  });
});

describe("compare.ts", () => {
  const out = mkdtempSync(join(tmpdir(), "bunchat-compare-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test("writes a results JSON and chart with every target and goal", async () => {
    const proc = Bun.spawn(["bun", "bench/compare.ts", "--quick", "--reps", "1", "--scenarios", "burst,idle,http", "--targets", COMPARED.join(","), "--out", out], { stdout: "pipe", stderr: "pipe" });
    const [code, stdout] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
    expect(code).toBe(0);
    expect(stdout).toContain(`| scenario | unit | ${COMPARED.join(" | ")} |`);
    const files = readdirSync(out);
    const json = files.find((f) => f.endsWith(".json"))!;
    expect(files).toContain("latest.svg");
    const results = (await Bun.file(join(out, json)).json()) as { runs: { target: string; measure: unknown }[]; goals: { scenario: string }[]; versions: { bun: string } };
    expect(results.runs).toHaveLength(COMPARED.length + 5 + 5); // the cluster target takes part in burst only
    expect(results.runs.every((r) => r.measure !== null)).toBe(true);
    expect(results.goals.map((g) => g.scenario)).toEqual(expect.arrayContaining(["burst", "idle", "http"]));
    expect(results.versions.bun).toBe(Bun.version);
  }, 120_000);
});

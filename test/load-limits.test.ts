// bench/load.ts as a newcomer meets it: its defaults pass against a server with default
// limits; when the server's rate limit does take part, the report says so (messages the
// server dropped are not "lost"); and with nothing listening it says that, plainly.
import { afterEach, describe, expect, test } from "bun:test";
import { DEFAULT_URL, DEFAULTS, runLoad, type LoadOptions } from "../bench/load.ts";
import type { Scenario } from "../bench/lib/worker.ts";
import type { ChatServer } from "../src/app.ts";
import type { Config } from "../src/config.ts";
import { freePort } from "./helpers/redis.ts";
import { startServer } from "./helpers/server.ts";

let server: ChatServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

/** A server with every default limit (testConfig only changes port, host, history and logs). */
async function serve(overrides: Partial<Config> = {}): Promise<ChatServer> {
  server = await startServer(overrides);
  return server;
}

function options(scenario: Scenario, url: string, overrides: Partial<LoadOptions> = {}): LoadOptions {
  return {
    scenario, kind: "bunchat", urls: [url], clients: 4, messages: 10, publishers: 2, rate: 20, durationSeconds: 1, size: 64,
    workers: 2, timeoutSeconds: 20, concurrency: 16, room: "limits", ...DEFAULTS[scenario], ...overrides,
  };
}

const loadCli = async (...args: string[]) => {
  const proc = Bun.spawn(["bun", "bench/load.ts", ...args], { stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
};

describe("defaults against a default server", () => {
  test.each(["burst", "private"] as const)("%s with its defaults: no loss, nothing rate-limited", async (scenario) => {
    const s = await serve();
    const r = await runLoad(options(scenario, s.wsUrl));
    expect(r).toMatchObject({ lost: 0, dropped: 0, rateLimited: 0, closedByPolicy: 0, closedEarly: 0, timedOut: false });
    expect(r.received).toBe(scenario === "burst" ? 32 * 32 * 30 : 100 * 30);
  });

  test("fanout at its default rate and publishers (fewer subscribers, shorter): no loss, nothing rate-limited", async () => {
    const s = await serve();
    const r = await runLoad(options("fanout", s.wsUrl, { clients: 10, durationSeconds: 2 }));
    expect(r).toMatchObject({ lost: 0, dropped: 0, rateLimited: 0, closedByPolicy: 0, timedOut: false });
    expect(r.received).toBe(10 * 40 * 2);
  });
});

describe("the server's rate limit, counted as such", () => {
  test("rate-limited messages are dropped, not lost, and the run finishes without waiting for them", async () => {
    const s = await serve({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 0 });
    const r = await runLoad(options("burst", s.wsUrl, { clients: 4, messages: 20 }));
    // Each client gets its burst of 5 through (plus what refills while it sends).
    expect(r.rateLimited).toBeGreaterThan(0);
    expect(r).toMatchObject({ lost: 0, closedByPolicy: 0, timedOut: false, dropped: r.rateLimited });
    expect(r.received).toBe(4 * (4 * 20 - r.rateLimited));
  });

  test("fanout publishers over the limit: dropped and reported, subscribers lose nothing the server accepted", async () => {
    const s = await serve({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 0 });
    const r = await runLoad(options("fanout", s.wsUrl, { clients: 3, publishers: 1, rate: 40, durationSeconds: 1 }));
    expect(r.rateLimited).toBeGreaterThan(0);
    expect(r).toMatchObject({ lost: 0, timedOut: false, dropped: r.rateLimited });
    expect(r.received).toBe(3 * (40 - r.rateLimited));
  });

  test("closes with 1008 are their own count; the closed clients' messages are dropped, not lost", async () => {
    const s = await serve({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 10 });
    const r = await runLoad(options("burst", s.wsUrl, { clients: 4, messages: 50 }));
    expect(r.closedByPolicy).toBe(4);
    expect(r).toMatchObject({ lost: 0, timedOut: false });
    expect(r.dropped).toBeGreaterThanOrEqual(r.rateLimited);
  });

  test("the CLI's report names the rate limit and how to turn it off, and exits 1", async () => {
    const s = await serve({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 0 });
    const { code, stdout } = await loadCli("private", "--url", s.wsUrl, "--clients", "2", "--messages", "20", "--workers", "1");
    expect(code).toBe(1);
    expect(stdout).toMatch(/^lost \/ duplicates \/ reordered +0 \/ 0 \/ 0$/m);
    expect(stdout).toMatch(/^NOTE +the server's rate limit dropped \d+ messages: start it with RATE_LIMIT=0 for load tests$/m);
  });
});

describe("the command line", () => {
  test("nothing listening is said plainly, with exit 2", async () => {
    const url = `ws://127.0.0.1:${await freePort()}/ws`;
    const { code, stdout, stderr } = await loadCli("burst", "--url", url, "--clients", "10");
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.trim()).toBe(`load: nothing listening at ${url} (start a server: bun run src/server.ts)`);
  });

  test("--help shows the default URL and every scenario's defaults", async () => {
    const { code, stdout } = await loadCli("--help");
    expect(code).toBe(0);
    expect(stdout).toContain(`[${DEFAULT_URL}]`);
    expect(stdout).toContain("[burst 32, fanout 1000, storm 5000, idle 5000, private 200, scale 1000]");
    expect(stdout).toContain("[burst 30, private 30, scale 1]");
    expect(stdout).toContain("RATE_LIMIT=0");
  });
});

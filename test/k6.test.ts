// The k6 scripts are first-class even though k6 cannot be installed here: they must load
// as ES modules, import only modules k6 provides, and — run for a couple of seconds with
// 1–2 VUs through test/k6/adapter.ts — speak bunchat's protocol and count right.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { ChatServer } from "../src/app.ts";
import { runK6Script } from "./k6/adapter.ts";
import { startServer } from "./helpers/server.ts";

const SCRIPTS = ["fanout.js", "connect.js"].map((f) => join(import.meta.dir, "..", "bench", f));
// Modules a k6 script may import (k6's built-ins); nothing from npm, nothing relative.
const K6_BUILTINS = /^k6(\/(websockets|timers|metrics|execution|http|ws|crypto|encoding|data|net\/grpc|html|experimental\/[a-z-]+))?$/;

let server: ChatServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

describe("k6 scripts", () => {
  test.each(SCRIPTS)("%s imports only k6 modules and exports options", async (path) => {
    const source = await Bun.file(path).text();
    const imports = [...source.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
    expect(imports.length).toBeGreaterThan(0);
    for (const specifier of imports) expect({ specifier, ok: K6_BUILTINS.test(specifier) }).toEqual({ specifier, ok: true });
    expect(source).toMatch(/^export const options = \{/m);
    expect(source).not.toMatch(/\brequire\(/);
  });

  test("fanout.js delivers every message to every subscriber and passes its thresholds", async () => {
    server = await startServer({ rateLimit: 0, historyDb: "off" });
    const run = await runK6Script(SCRIPTS[0]!, {
      URL: server.wsUrl, SUBSCRIBERS: "2", PUBLISHERS: "1", RATE: "20", DURATION: "2", SETTLE: "1", GRACE: "1", ROOM: "k6",
    });
    const count = (name: string) => run.metrics.aggregate(name, "count");
    expect(count("bunchat_sent")).toBe(40);
    expect(count("bunchat_deliveries")).toBe(80);
    expect(count("bunchat_lost_messages")).toBe(0);
    expect(count("bunchat_out_of_order")).toBe(0);
    expect(run.metrics.aggregate("bunchat_latency", "max")).toBeGreaterThanOrEqual(0);
    expect(run.thresholds.length).toBe(3);
    for (const t of run.thresholds) expect(t).toMatchObject({ ok: true });
    // The server saw the same traffic.
    expect(server.metrics.chatMessages.value).toBe(40);
  });

  test("fanout.js reports loss when subscribers miss messages", async () => {
    // Subscribers that must expect more than is ever sent: publishers' rate is cut by the
    // server's rate limit, so the script must count the shortfall as lost and fail.
    server = await startServer({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 0, historyDb: "off" });
    const run = await runK6Script(SCRIPTS[0]!, {
      URL: server.wsUrl, SUBSCRIBERS: "1", PUBLISHERS: "1", RATE: "20", DURATION: "2", SETTLE: "1", GRACE: "1",
    });
    expect(run.metrics.aggregate("bunchat_lost_messages", "count")).toBeGreaterThan(0);
    expect(run.thresholds.find((t) => t.metric === "bunchat_lost_messages")!.ok).toBe(false);
  });

  test("connect.js measures time to welcome and counts refusals at the admission cap", async () => {
    server = await startServer({ historyDb: "off" });
    const ok = await runK6Script(SCRIPTS[1]!, { URL: server.wsUrl, RATE: "5", DURATION: "1", HOLD: "1" });
    expect(ok.metrics.aggregate("bunchat_connects", "count")).toBe(5);
    expect(ok.metrics.aggregate("bunchat_refused", "rate")).toBe(0);
    expect(ok.metrics.aggregate("bunchat_time_to_welcome", "count")).toBe(5);
    for (const t of ok.thresholds) expect(t).toMatchObject({ ok: true });
    await server.stop();

    server = await startServer({ historyDb: "off", maxConnections: 3 });
    const capped = await runK6Script(SCRIPTS[1]!, { URL: server.wsUrl, RATE: "6", DURATION: "1", HOLD: "2" });
    expect(capped.metrics.aggregate("bunchat_connects", "count")).toBe(3);
    expect(capped.metrics.aggregate("bunchat_refused", "rate")).toBeCloseTo(0.5, 5);
    expect(capped.thresholds.find((t) => t.metric === "bunchat_refused")!.ok).toBe(false);
  });
});

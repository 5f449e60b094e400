// Webhooks against a real local receiver that verifies every signature: the events a chat
// produces, batched and signed; retries with backoff while the receiver fails; a stalled
// receiver never slows the chat, and what overflows the queue is counted and logged.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createServer, type ChatServer } from "../src/app.ts";
import { ConfigError, parseConfig, testConfig, type Config } from "../src/config.ts";
import { sign, signatureHeaders, verify } from "../src/hooks/signature.ts";
import { ThrottledWarning } from "../src/hooks/throttled-log.ts";
import { Webhooks, type WebhookTiming } from "../src/hooks/webhooks.ts";
import { Metrics } from "../src/obs/metrics.ts";
import { createLogger } from "../src/obs/log.ts";
import { eventually } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";
import { WebhookReceiver } from "./helpers/webhook-receiver.ts";

// test/setup.ts's 30 s default reaches only the first file bun test loads (Bun 1.4.5): say it here.
setDefaultTimeout(30_000);

const SECRET = "whsec-for-tests";
const fixture = serverFixture();
const receivers: WebhookReceiver[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.stop();
});

const QUICK: Partial<WebhookTiming> = { lingerMs: 10, retryBaseMs: 40, retryMaxMs: 200, timeoutMs: 2000 };

async function serve(receiver: WebhookReceiver, overrides: Partial<Config> = {}, timing: Partial<WebhookTiming> = QUICK): Promise<{ server: ChatServer; lines: string[] }> {
  const lines: string[] = [];
  const config = testConfig({ rateLimit: 0, presenceWindow: 10, logLevel: "info", webhookUrl: receiver.url, webhookSecret: SECRET, ...overrides });
  const server = fixture.adopt(await createServer(config, { log: createLogger("info", undefined, (l) => lines.push(l)), webhookTiming: timing }));
  return { server, lines };
}

function receiver(secret = SECRET): WebhookReceiver {
  const r = WebhookReceiver.start(secret);
  receivers.push(r);
  return r;
}

const metric = async (s: ChatServer, line: string): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found ? Number(found.split(" ")[1]) : 0;
};

describe("signatures", () => {
  test("HMAC-SHA256 over timestamp.body: the right secret verifies; a changed body, another secret or an old timestamp do not", async () => {
    const body = '{"events":[]}';
    const headers = new Headers(await signatureHeaders(SECRET, body));
    expect(await verify(SECRET, headers, body)).toBe(true);
    expect(await verify(SECRET, headers, `${body} `)).toBe(false);
    expect(await verify("other", headers, body)).toBe(false);
    const old = Math.floor(Date.now() / 1000) - 301;
    const stale = new Headers({ "x-bunchat-timestamp": String(old), "x-bunchat-signature": await sign(SECRET, old, body) });
    expect(await verify(SECRET, stale, body)).toBe(false);
    // The documented recipe: hex of HMAC-SHA256(secret, "<timestamp>.<body>"), as any language computes it.
    const expected = new Bun.CryptoHasher("sha256", SECRET).update(`1700000000.${body}`).digest("hex");
    expect(await sign(SECRET, 1_700_000_000, body)).toBe(`sha256=${expected}`);
  });

  test("a receiver with another secret refuses every request", async () => {
    const wrong = receiver("not-the-secret");
    const { server } = await serve(wrong, {}, { ...QUICK, maxAttempts: 1 });
    await fixture.connectTo(server, { name: "alice" });
    await eventually(() => wrong.forged > 0, 3000, "a forged-looking request");
    expect(wrong.events).toEqual([]);
  });
});

describe("events", () => {
  test("a person's visit, in order: connected, room occupied, joined, message stored, left, vacated, disconnected", async () => {
    const r = receiver();
    const { server } = await serve(r);
    const alice = await fixture.connectTo(server, { name: "alice" });
    const person = (alice.frames[0]!.you as { person: string }).person;
    alice.send({ type: "chat", text: "hi hooks", ref: "x" });
    await alice.next("message");
    alice.close();
    await eventually(() => r.of("user.disconnected").length === 1, 3000, "the disconnect event");
    expect(r.events.map((e) => e.type)).toEqual(["user.connected", "room.occupied", "member.joined", "message.stored", "member.left", "room.vacated", "user.disconnected"]);
    expect(r.events.map((e) => e.data)).toEqual([
      { person, name: "alice" },
      { room: "lobby" },
      { room: "lobby", person, name: "alice" },
      { kind: "room", id: 1, room: "lobby", from: "alice", text: "hi hooks", ts: expect.any(Number), person },
      { room: "lobby", person, name: "alice" },
      { room: "lobby" },
      { person, name: "alice" },
    ]);
    for (const e of r.events) expect(e).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), node: "local", ts: expect.any(Number) });
    // Batched: seven events took fewer requests.
    expect(r.requests).toBeLessThan(7);
  });

  test("WEBHOOK_EVENTS chooses the events; the backend's own messages count too", async () => {
    const r = receiver();
    const { server } = await serve(r, { webhookEvents: ["message.stored"] });
    const alice = await fixture.connectTo(server, { name: "alice" });
    alice.send("one");
    await fetch(`http://127.0.0.1:${server.port}/api/rooms/lobby/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"text":"two","from":"bot"}' });
    await eventually(() => r.events.length === 2, 3000, "two events");
    expect(r.events.map((e) => [e.type, e.data.text, e.data.bot])).toEqual([["message.stored", "one", undefined], ["message.stored", "two", true]]);
  });

  test("the options are checked: a URL needs a secret; unknown events and non-http URLs are refused", () => {
    expect(() => parseConfig([], { WEBHOOK_URL: "http://127.0.0.1:9/x" })).toThrow(/WEBHOOK_SECRET/);
    expect(() => parseConfig([], { WEBHOOK_URL: "ftp://x", WEBHOOK_SECRET: "s" })).toThrow(ConfigError);
    expect(() => parseConfig([], { WEBHOOK_EVENTS: "member.joined,member.sneezed" })).toThrow(/member.sneezed/);
    expect(() => parseConfig([], { PUBLISH_HOOK_URL: "localhost:9" })).toThrow(/PUBLISH_HOOK_URL/);
  });
});

describe("delivery", () => {
  test("a receiver that fails is retried with backoff; the events arrive once it is back", async () => {
    const r = receiver();
    r.mode = "fail";
    const { server, lines } = await serve(r, { webhookEvents: ["message.stored"] });
    const alice = await fixture.connectTo(server, { name: "alice" });
    alice.send("keep trying");
    await eventually(async () => (await metric(server, "bunchat_webhook_failures_total")) >= 3, 5000, "three failed attempts");
    expect(r.events).toEqual([]);
    r.mode = "ok";
    await eventually(() => r.events.length === 1, 5000, "the event delivered");
    expect(r.events[0]!.data.text).toBe("keep trying");
    // Counted once the receiver's answer is read, which may come a moment after it had the event.
    await eventually(async () => (await metric(server, "bunchat_webhook_delivered_total")) === 1, 5000, "the delivery counted");
    expect(lines.some((l) => l.includes('"webhook_failed"') && l.includes("status 500"))).toBe(true);
  });

  test("after its last attempt a batch is dropped, counted and logged", async () => {
    const r = receiver();
    r.mode = "fail";
    const { server, lines } = await serve(r, { webhookEvents: ["message.stored"] }, { ...QUICK, maxAttempts: 2 });
    const alice = await fixture.connectTo(server, { name: "alice" });
    alice.send("lost cause");
    await eventually(async () => (await metric(server, 'bunchat_webhook_dropped_total{reason="gave_up"}')) === 1, 5000, "the batch given up");
    expect(lines.some((l) => l.includes('"webhook_gave_up"'))).toBe(true);
  });

  test("a stalled receiver does not slow the chat; the full queue drops its oldest, counted and logged", async () => {
    const r = receiver();
    r.mode = "stall";
    const { server, lines } = await serve(r, { webhookQueue: 20 });
    const alice = await fixture.connectTo(server, { name: "alice" });
    const bob = await fixture.connectTo(server, { name: "bob" });
    let slowest = 0;
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      alice.send({ type: "chat", text: `m${i}`, ref: i });
      await bob.next("message", (m) => m.ref === i);
      slowest = Math.max(slowest, performance.now() - started);
    }
    // Loopback round trips take a millisecond or two; the bound is wide for a shared machine.
    expect(slowest).toBeLessThan(500);
    expect(await metric(server, 'bunchat_webhook_dropped_total{reason="overflow"}')).toBeGreaterThan(150);
    expect(await metric(server, "bunchat_webhook_queue")).toBeLessThanOrEqual(20);
    expect(lines.filter((l) => l.includes('"webhook_queue_overflow"')).length).toBe(1); // throttled: one line, not 150
    r.release();
  });

  test("while a batch is stuck, what the full queue drops is freed: its memory stays bounded by WEBHOOK_QUEUE", async () => {
    const r = receiver();
    r.mode = "stall";
    const hooks = new Webhooks({
      url: r.url, secret: SECRET, events: [], queueLimit: 20, node: "a", userAgent: "test",
      metrics: new Metrics(() => 0, Date.now()), log: createLogger("silent"), timing: { ...QUICK, lingerMs: 0, timeoutMs: 60_000 },
    });
    hooks.emit("room.occupied", { room: "first" });
    await eventually(() => r.requests === 1, 5000, "the first batch in flight (stalled)");
    // Thousands of events while that batch waits: the queue keeps 20; the dropped must not linger.
    for (let i = 0; i < 5000; i++) hooks.emit("room.occupied", { room: `r${i}` });
    expect(hooks.length).toBe(20);
    const held = (hooks as unknown as { queue: unknown[] }).queue.length;
    expect(held).toBeLessThan(2 * 1024 + 20);
    r.release();
    await hooks.stop(100);
  });

  test("a throttled warning says how many it held back", () => {
    const lines: string[] = [];
    let now = 0;
    const warning = new ThrottledWarning(createLogger("warn", undefined, (l) => lines.push(l)), "overflow", 1000, () => now);
    for (let i = 0; i < 5; i++) warning.warn();
    now = 1500;
    warning.warn();
    expect(lines.map((l) => JSON.parse(l).moreSinceLastLine)).toEqual([undefined, 4]);
  });
});

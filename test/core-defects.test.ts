// Defects of the single-node path found in review (issue #10), each reproduced against a
// real server on port 0 with real clients, and held fixed: caps racing token checks,
// replays cut short silently, memory that grows with every room ever used, HTTP 500s, and
// small protocol slips.
import { describe, expect, test } from "bun:test";
import { signToken } from "../src/transport/jwt.ts";
import { eventually, handshake, TestClient } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";

const SECRET = "test-secret-of-reasonable-length";
const fixture = serverFixture({ presenceWindow: 20 });
const { start, connect, clients } = fixture;
const now = () => Math.floor(Date.now() / 1000);

describe("caps hold under simultaneous handshakes", () => {
  test("50 handshakes with valid tokens at once: MAX_CONNECTIONS and MAX_CONNECTIONS_PER_IP hold", async () => {
    const s = await start({ authSecret: SECRET, maxConnections: 8, maxConnectionsPerIp: 5 });
    const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => signToken(SECRET, { sub: `u${i}`, exp: now() + 60 })));
    const outcomes = await Promise.all(tokens.map((token) => new Promise<"open" | "refused">((resolve) => {
      const ws = new WebSocket(`${s.wsUrl}?token=${token}`);
      ws.onopen = () => resolve("open");
      ws.onerror = () => resolve("refused");
      clients.push({ close: () => ws.close() } as TestClient);
    })));
    expect(outcomes.filter((o) => o === "open").length).toBe(5);
    expect(s.admission.connections).toBe(5);
  });

  test("a refused or abandoned handshake gives its slot back", async () => {
    const s = await start({ maxConnections: 2 });
    for (let i = 0; i < 5; i++) expect((await handshake(`http://127.0.0.1:${s.port}`, `/ws?name=${encodeURIComponent(" bad")}`)).status).toBe(400);
    const a = await connect({ name: "a" });
    const b = await connect({ name: "b" });
    expect((await handshake(`http://127.0.0.1:${s.port}`, "/ws?name=c")).status).toBe(503);
    a.close();
    await eventually(() => s.admission.connections === 1, 5000, "a's slot released");
    await connect({ name: "c" });
    b.close();
  });
});

describe("replays say when they are cut short", () => {
  test("a connect replay longer than one page ends with more: true in welcome", async () => {
    await start({ rateLimit: 0, historyLimit: 5000 });
    const writer = await connect({ name: "writer" });
    for (let i = 0; i < 1100; i++) writer.send(`m${i}`);
    await writer.next("message", (m) => m.text === "m1099", 10_000);
    const late = await connect({ name: "late", since: 0 });
    const welcome = late.frames[0]!;
    expect((welcome.history as unknown[]).length).toBe(1000);
    expect(welcome.more).toBe(true);
    const tail = await connect({ name: "tail" });
    expect(tail.frames[0]!.more).toBe(true); // only the last HISTORY_ON_JOIN of 1100
    expect(welcome.incomplete).toBeUndefined();
  });

  test("a replay whose start was trimmed by retention says incomplete", async () => {
    await start({ rateLimit: 0, historyLimit: 10 });
    const writer = await connect({ name: "writer" });
    for (let i = 0; i < 30; i++) writer.send(`m${i}`);
    await writer.next("message", (m) => m.text === "m29");
    const late = await connect({ name: "late", since: 5 });
    expect(late.frames[0]).toMatchObject({ type: "welcome", incomplete: true, more: false });
    expect((late.frames[0]!.history as { id: number }[]).map((m) => m.id)).toEqual(Array.from({ length: 10 }, (_, i) => 21 + i));
    const upToDate = await connect({ name: "current", since: 30 });
    expect(upToDate.frames[0]!.incomplete).toBeUndefined();
  });

  test("a history read that fails at join is an error, not an empty replay", async () => {
    const s = await start();
    const alice = await connect({ name: "alice" });
    const holder = s as unknown as Record<string, unknown>;
    const broker = (holder.broker ?? holder.store) as { after: (...a: unknown[]) => Promise<unknown>; before: (...a: unknown[]) => Promise<unknown> };
    const failing = () => Promise.reject(new Error("disk on fire"));
    broker.after = failing;
    broker.before = failing;
    alice.send({ type: "join", room: "dev", ref: "j" });
    expect(await alice.next("error", (e) => e.ref === "j")).toMatchObject({ code: "store_unavailable" });
    alice.send({ type: "chat", room: "dev", text: "x", ref: "c" });
    expect(await alice.next("error", (e) => e.ref === "c")).toMatchObject({ code: "not_in_room" });
  });
});

describe("memory", () => {
  test("60,000 rooms used and left: per-room state goes back to what it was", async () => {
    const s = await start({ rateLimit: 0, historyDb: "off", maxRoomsPerConnection: 10_000 });
    // A lean client that keeps no frames, so the heap measured is the server's.
    const ws = new WebSocket(`${s.wsUrl}?name=alice`);
    let lefts = 0;
    let waiter: (() => void) | null = null;
    let target = 0;
    ws.onmessage = (e) => {
      if (String(e.data).startsWith('{"type":"left"') && ++lefts >= target) waiter?.();
    };
    await new Promise((resolve) => (ws.onopen = resolve));
    await Bun.sleep(50);
    Bun.gc(true);
    const heapBefore = process.memoryUsage().heapUsed;
    const ROOMS = 60_000;
    const BATCH = 500;
    for (let first = 0; first < ROOMS; first += BATCH) {
      const done = new Promise<void>((resolve) => (waiter = resolve));
      target = first + BATCH;
      for (let k = first; k < first + BATCH; k++) {
        ws.send(JSON.stringify({ type: "join", room: `soak${k}` }));
        ws.send(JSON.stringify({ type: "chat", room: `soak${k}`, text: "x" }));
        ws.send(JSON.stringify({ type: "leave", room: `soak${k}` }));
      }
      await done;
    }
    await Bun.sleep(300); // presence windows close
    Bun.gc(true);
    const grown = process.memoryUsage().heapUsed - heapBefore;
    ws.close();
    // One entry per room in any map would be several MB at 60,000 rooms; allow 3 MB of noise.
    expect(grown).toBeLessThan(3 * 1024 * 1024);
  }, 120_000);
});

describe("HTTP never answers 500", () => {
  test("odd percent-encodings are 400, wrong methods are 405 with Allow, CONNECT is not a crash", async () => {
    const s = await start();
    const base = `http://127.0.0.1:${s.port}`;
    for (const room of ["%25", "a%25", "%25E0%25A4%25A", "%E0%A4%A"]) {
      const res = await fetch(`${base}/api/rooms/${room}/messages`);
      expect({ room, status: res.status }).toEqual({ room, status: 400 });
    }
    // POST publishes (the server API, docs/API.md); the other verbs are not this path's.
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const res = await fetch(`${base}/api/rooms/lobby/messages`, { method });
      expect({ method, status: res.status }).toEqual({ method, status: 405 });
      expect(res.headers.get("allow")).toBe("GET, POST, HEAD");
    }
    expect((await fetch(`${base}/healthz`, { method: "POST" })).status).toBe(405);
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const res = await fetch(`${base}/`, { method });
      expect({ method, status: res.status, allow: res.headers.get("allow") }).toEqual({ method, status: 405, allow: "GET, HEAD" });
    }
    expect((await fetch(`${base}/`)).status).toBe(200);
    const raw = await rawRequest(s.port, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n");
    expect(raw).not.toMatch(/^HTTP\/1\.1 500/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe("protocol slips", () => {
  test("who honours a token's rooms claim", async () => {
    await start({ authSecret: SECRET });
    const token = await signToken(SECRET, { sub: "alice", exp: now() + 60, rooms: ["lobby"] });
    const alice = await connect({ token });
    alice.send({ type: "who", room: "secret", ref: "w" });
    expect(await alice.next("error", (e) => e.ref === "w")).toMatchObject({ code: "forbidden_room" });
  });

  test("rate_limited carries the ref of the dropped frame", async () => {
    await start({ rateLimit: 1, rateBurst: 1, rateAbuseClose: 0 });
    const alice = await connect({ name: "alice" });
    alice.send({ type: "ping", ref: "first" });
    alice.send({ type: "ping", ref: "second" });
    expect(await alice.next("error")).toMatchObject({ code: "rate_limited", ref: "second" });
  });

  test("frames sent before welcome are counted once", async () => {
    const s = await start();
    const ws = new WebSocket(`${s.wsUrl}?name=early`);
    await new Promise<void>((resolve) => {
      ws.onopen = () => {
        for (let i = 0; i < 3; i++) ws.send(JSON.stringify({ type: "ping" }));
      };
      let pongs = 0;
      ws.onmessage = (e) => {
        if (JSON.parse(String(e.data)).type === "pong" && ++pongs === 3) resolve();
      };
    });
    ws.close();
    expect(s.metrics.messagesIn.value).toBe(3);
  });

  test("nick replies carry the ref, and a nick to your own name is answered", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    alice.send({ type: "nick", name: "alicia", ref: "n1" });
    expect(await alice.next("nick")).toMatchObject({ from: "alice", name: "alicia", ref: "n1" });
    alice.send({ type: "nick", name: "alicia", ref: "n2" });
    expect(await alice.next("nick")).toMatchObject({ from: "alicia", name: "alicia", ref: "n2" });
  });
});

async function rawRequest(port: number, text: string): Promise<string> {
  let received = "";
  const done = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        received += new TextDecoder().decode(chunk);
        if (received.includes("\r\n\r\n")) done.resolve();
      },
      close() {
        done.resolve();
      },
      error() {
        done.resolve();
      },
    },
  });
  socket.write(text);
  await Promise.race([done.promise, Bun.sleep(2000)]);
  socket.end();
  return received;
}

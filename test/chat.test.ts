// The chat protocol end to end: a real server on port 0, real WebSocket clients.
import { describe, expect, test } from "bun:test";
import { nameKey } from "../src/protocol/names.ts";
import { eventually, handshake, quietFor, TestClient } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";

const fixture = serverFixture({ presenceWindow: 20 });
const { start, connect, clients } = fixture;

describe("welcome", () => {
  test("names you, your room, the online count and the member list", async () => {
    await start();
    const alice = await connect({ name: "alice", room: "lobby" });
    const welcome = alice.frames[0]!;
    expect(welcome.type).toBe("welcome");
    expect(welcome).toMatchObject({ you: { name: "alice" }, room: "lobby", online: 1, members: ["alice"], rooms: ["lobby"] });
    const bob = await connect({ name: "bob" });
    expect(bob.frames[0]).toMatchObject({ room: "lobby", online: 2 });
    expect((bob.frames[0]!.members as string[]).sort()).toEqual(["alice", "bob"]);
  });

  test("a client without a name gets a generated one", async () => {
    await start();
    const anon = await connect();
    expect((anon.frames[0]!.you as { name: string }).name).toMatch(/^user-[0-9a-f]{4}$/);
  });

  test("upgrades on / as well as /ws", async () => {
    const s = await start();
    const c = await TestClient.connect(s.wsUrl.replace(/\/ws$/, "/"), { name: "root" });
    clients.push(c);
    expect(c.frames[0]!.type).toBe("welcome");
  });
});

describe("room chat", () => {
  test("a plain-text frame reaches every member, the sender included, with id and timestamp", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    alice.send("hello, world");
    for (const c of [alice, bob]) {
      const m = await c.next("message");
      expect(m).toMatchObject({ room: "lobby", from: "alice", text: "hello, world", id: 1 });
      expect(typeof m.ts).toBe("number");
    }
  });

  test("JSON chat carries the sender's ref back as its confirmation, ids increase", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    alice.send({ type: "chat", text: "one", ref: "r1" });
    alice.send({ type: "chat", text: "two", ref: 2 });
    const first = await alice.next("message");
    const second = await alice.next("message");
    expect(first).toMatchObject({ text: "one", ref: "r1", id: 1 });
    expect(second).toMatchObject({ text: "two", ref: 2, id: 2 });
  });

  test("rooms are separate and a member can be in several", async () => {
    await start();
    const alice = await connect({ name: "alice", room: "lobby" });
    const bob = await connect({ name: "bob", room: "dev" });
    alice.send({ type: "join", room: "dev", ref: "j" });
    const joined = await alice.next("joined");
    expect(joined).toMatchObject({ room: "dev", online: 2, ref: "j" });
    alice.send({ type: "chat", room: "lobby", text: "lobby only" });
    alice.send({ type: "chat", room: "dev", text: "dev too" });
    expect(await bob.next("message")).toMatchObject({ room: "dev", text: "dev too" });
    expect(bob.all("message").some((m) => m.text === "lobby only")).toBe(false);
    // Plain text goes to the room joined last.
    alice.send("plain goes to dev");
    expect(await bob.next("message")).toMatchObject({ room: "dev", text: "plain goes to dev" });
  });

  test("leave stops delivery; chatting in a room you left is an error", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    bob.send({ type: "leave", room: "lobby" });
    await bob.next("left");
    alice.send("anyone?");
    await alice.next("message");
    await quietFor(bob, "message", 100);
    bob.send({ type: "chat", room: "lobby", text: "x", ref: 7 });
    expect(await bob.next("error")).toMatchObject({ code: "not_in_room", ref: 7 });
  });

  test("typing and who", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    alice.send({ type: "typing" });
    expect(await bob.next("typing")).toMatchObject({ room: "lobby", from: "alice" });
    bob.send({ type: "who", ref: "w" });
    const who = await bob.next("who");
    expect(who).toMatchObject({ room: "lobby", online: 2, ref: "w" });
    expect((who.members as string[]).sort()).toEqual(["alice", "bob"]);
    bob.send({ type: "ping", ref: 1 });
    expect(await bob.next("pong")).toMatchObject({ ref: 1 });
  });
});

describe("private messages", () => {
  test("reach only the recipient, and the sender as confirmation", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "Bob" });
    const carol = await connect({ name: "carol" });
    alice.send({ type: "private", to: "bob", text: "psst", ref: "p1" });
    const got = await bob.next("private");
    expect(got).toMatchObject({ from: "alice", to: "Bob", text: "psst", id: 1 });
    expect(await alice.next("private")).toMatchObject({ text: "psst", ref: "p1" });
    // carol hears a public message sent after the private one, and never the private one.
    alice.send("public");
    await carol.next("message");
    expect(carol.all("private")).toHaveLength(0);
    expect(carol.raw.some((r) => r.includes("psst"))).toBe(false);
  });

  test("an unknown recipient is an error", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    alice.send({ type: "private", to: "nobody", text: "hi", ref: 3 });
    expect(await alice.next("error")).toMatchObject({ code: "no_such_user", ref: 3 });
  });
});

describe("names", () => {
  test("names are unique case-insensitively; a taken or invalid name is refused with a reason", async () => {
    const s = await start();
    await connect({ name: "Alice" });
    for (const [name, status, error] of [["alice", 409, "name_taken"], ["a\u0007b", 400, "bad_name"], ["x".repeat(33), 400, "bad_name"], [" pad", 400, "bad_name"]] as const) {
      const res = await handshake(`http://127.0.0.1:${s.port}`, `/ws?name=${encodeURIComponent(name)}`);
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: string }).error).toBe(error);
    }
  });

  test("nick renames you in every room; the old name becomes free", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    alice.send({ type: "nick", name: "alicia" });
    expect(await bob.next("nick")).toMatchObject({ room: "lobby", from: "alice", name: "alicia" });
    alice.send("as alicia");
    expect(await bob.next("message")).toMatchObject({ from: "alicia" });
    bob.send({ type: "nick", name: "ALICIA", ref: "n" });
    expect(await bob.next("error")).toMatchObject({ code: "name_taken", ref: "n" });
    const newAlice = await connect({ name: "alice" });
    expect((newAlice.frames[0]!.you as { name: string }).name).toBe("alice");
    bob.send({ type: "private", to: "alicia", text: "hi" });
    expect(await alice.next("private")).toMatchObject({ to: "alicia" });
  });
});

describe("presence", () => {
  test("joins and leaves become presence frames with the online count", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    await alice.next("presence", (p) => (p.joined as string[]).includes("alice"));
    const bob = await connect({ name: "bob" });
    expect(await alice.next("presence", (p) => (p.joined as string[]).includes("bob"))).toMatchObject({ online: 2 });
    bob.close();
    expect(await alice.next("presence", (p) => (p.left as string[]).includes("bob"))).toMatchObject({ online: 1 });
  });

  test("N quick joins are coalesced: far fewer than N² presence frames", async () => {
    const s = await start({ presenceWindow: 200 });
    const watcher = await connect({ name: "watcher" });
    const n = 40;
    const joiners = await Promise.all(Array.from({ length: n }, (_, i) => connect({ name: `j${i}` })));
    await eventually(() => watcher.all("presence").reduce((sum, p) => sum + (p.joined as string[]).length, 0) >= n + 1, 5000, "all joins announced");
    const presenceFrames = s.metrics.presenceFrames.value;
    // Uncoalesced, every join would be one frame to every member so far: ~n²/2 deliveries.
    const deliveredToJoiners = joiners.reduce((sum, c) => sum + c.all("presence").length, 0);
    expect(presenceFrames).toBeLessThan(n / 4);
    expect(deliveredToJoiners).toBeLessThan((n * n) / 8);
    expect(watcher.all("presence").at(-1)!.online).toBe(n + 1);
  });
});

describe("admission", () => {
  test("over MAX_CONNECTIONS the upgrade is refused with 503 and a JSON reason; the count recovers", async () => {
    const s = await start({ maxConnections: 3 });
    const three = [await connect({ name: "a" }), await connect({ name: "b" }), await connect({ name: "c" })];
    const refused = await handshake(`http://127.0.0.1:${s.port}`, "/ws?name=d");
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: "server_full" });
    expect(s.metrics.refused.get("server_full")).toBe(1);
    three[0]!.close();
    await eventually(() => s.admission.connections === 2, 3000, "count back to 2");
    const d = await connect({ name: "d" });
    expect(d.frames[0]!.type).toBe("welcome");
    expect(s.admission.connections).toBe(3);
  });

  test("the count stays exact under a storm of connects and abrupt disconnects", async () => {
    const s = await start({ maxConnections: 50 });
    const attempts = Array.from({ length: 120 }, (_, i) =>
      TestClient.open(`${s.wsUrl}?name=s${i}`).then(
        (c) => {
          if (i % 2 === 0) c.ws.close();
          else clients.push(c);
          return true;
        },
        () => false,
      ),
    );
    const results = await Promise.all(attempts);
    expect(results.filter(Boolean).length).toBeGreaterThanOrEqual(50);
    await eventually(() => s.admission.connections === s.engine.registry.connections && s.admission.connections === clients.filter((c) => c.ws.readyState === 1).length, 5000, "exact count");
    for (const c of clients.splice(0)) c.ws.close();
    await eventually(() => s.admission.connections === 0 && s.engine.registry.connections === 0, 5000, "count back to zero");
  });

  test("per-IP cap", async () => {
    const s = await start({ maxConnectionsPerIp: 2 });
    await connect({ name: "a" });
    await connect({ name: "b" });
    const res = await handshake(`http://127.0.0.1:${s.port}`, "/ws?name=c");
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ error: "too_many_connections" });
  });

  test("the admission preflight explains a refusal for browsers", async () => {
    const s = await start();
    await connect({ name: "taken" });
    const res = await fetch(`http://127.0.0.1:${s.port}/api/admission?name=taken`);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ ok: false, error: "name_taken" });
    const ok = await fetch(`http://127.0.0.1:${s.port}/api/admission?name=free`);
    expect(await ok.json()).toMatchObject({ ok: true, name: "free" });
  });
});

describe("zombies", () => {
  test("a frozen client (SIGSTOP) is terminated by the ping sweep and leaves its rooms", async () => {
    const s = await start({ pingInterval: 1 });
    const alice = await connect({ name: "alice" });
    const child = Bun.spawn(["bun", "test/fixtures/frozen-client.ts", `${s.wsUrl}?name=frozen`], { stdout: "pipe" });
    try {
      const reader = child.stdout.getReader();
      const { value } = await reader.read();
      expect(new TextDecoder().decode(value)).toContain("ready");
      await eventually(() => s.engine.registry.named(nameKey("frozen")) !== undefined, 3000, "frozen joined");
      child.kill("SIGSTOP");
      const frozenAt = Date.now();
      // Keep the room busy, so the idle timer alone would never fire.
      const chatter = setInterval(() => alice.send("busy room"), 100);
      await alice.next("presence", (p) => (p.left as string[]).includes("frozen"), 6000);
      clearInterval(chatter);
      expect(Date.now() - frozenAt).toBeLessThan(3500);
      expect(s.metrics.zombiesTerminated.value).toBe(1);
      expect(s.engine.registry.named(nameKey("frozen")) !== undefined).toBe(false);
      expect(s.engine.registry.named(nameKey("alice")) !== undefined).toBe(true);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("bad input", () => {
  test.each([
    ["{not json", "bad_json"],
    ['{"type":"dance","ref":"r"}', "unknown_type"],
    ['{"text":"no type"}', "bad_frame"],
    ['{"type":null,"ref":"r"}', "bad_frame"],
    ['{"type":"chat","text":42,"ref":"r"}', "bad_field"],
    ['{"type":"chat","text":"   ","ref":"r"}', "empty_text"],
    ['{"type":"private","text":"hi","ref":"r"}', "bad_field"],
    ['{"type":"join","room":"no spaces","ref":"r"}', "bad_room"],
    ['{"type":"join","room":"ok","since":-1,"ref":"r"}', "bad_field"],
    ['{"type":"chat","text":"bell\\u0007","ref":"r"}', "bad_field"],
  ])("%s → error %s, connection kept open", async (frame, code) => {
    await start();
    const alice = await connect({ name: "alice" });
    alice.send(frame);
    const error = await alice.next("error");
    expect(error.code).toBe(code);
    if (frame.includes('"ref":"r"')) expect(error.ref).toBe("r");
    alice.send("still here");
    expect(await alice.next("message")).toMatchObject({ text: "still here" });
  });

  test("too-long text and binary frames are errors; other users are unaffected", async () => {
    await start({ maxTextLength: 10 });
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    alice.send("x".repeat(11));
    expect(await alice.next("error")).toMatchObject({ code: "text_too_long" });
    alice.ws.send(new Uint8Array([1, 2, 3]));
    expect(await alice.next("error")).toMatchObject({ code: "binary_not_supported" });
    bob.send("fine");
    expect(await alice.next("message")).toMatchObject({ text: "fine" });
    expect(bob.all("error")).toHaveLength(0);
  });

  test("a frame over MAX_PAYLOAD closes with 1009", async () => {
    await start({ maxPayload: 1024 });
    const alice = await connect({ name: "alice" });
    alice.send("y".repeat(2048));
    expect((await alice.closed()).code).toBe(1009);
  });

  test("flooding past the rate limit gets rate_limited and the excess is dropped", async () => {
    const s = await start({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 0 });
    const alice = await connect({ name: "alice" });
    for (let i = 0; i < 20; i++) alice.send({ type: "chat", text: `m${i}`, ref: i });
    await alice.next("error", (e) => e.code === "rate_limited");
    await eventually(() => alice.all("message").length + alice.all("error").length >= 20, 3000, "all answered");
    expect(alice.all("message").length).toBeLessThanOrEqual(6);
    expect(s.metrics.rateLimited.value).toBeGreaterThanOrEqual(14);
  });

  test("sustained abuse closes with 1008", async () => {
    await start({ rateLimit: 5, rateBurst: 5, rateAbuseClose: 20 });
    const alice = await connect({ name: "alice" });
    for (let i = 0; i < 60; i++) alice.send(`spam ${i}`);
    expect((await alice.closed()).code).toBe(1008);
  });
});

describe("shutdown", () => {
  test("stop tells clients with a system frame and closes them with 1001", async () => {
    const s = await start();
    const alice = await connect({ name: "alice" });
    await s.stop();
    expect(await alice.next("system")).toMatchObject({ text: expect.stringContaining("shutting down") });
    expect((await alice.closed()).code).toBe(1001);
  });
});

describe("health and metrics", () => {
  test("/healthz reports status, connections and uptime", async () => {
    const s = await start();
    await connect({ name: "alice" });
    const health = (await (await fetch(`http://127.0.0.1:${s.port}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: "ok", connections: 1 });
    expect(typeof health.uptime).toBe("number");
  });

  test("/metrics is Prometheus text with the counters that moved", async () => {
    const s = await start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    alice.send("hi");
    await bob.next("message");
    alice.send("{bad");
    await alice.next("error");
    alice.send({ type: "private", to: "bob", text: "p" });
    await bob.next("private");
    const res = await fetch(`http://127.0.0.1:${s.port}/metrics`);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain("# TYPE bunchat_connections gauge");
    expect(text).toMatch(/^bunchat_connections 2$/m);
    expect(text).toMatch(/^bunchat_connections_admitted_total 2$/m);
    expect(text).toMatch(/^bunchat_chat_messages_total 1$/m);
    expect(text).toMatch(/^bunchat_private_messages_total 1$/m);
    expect(text).toMatch(/^bunchat_errors_total\{code="bad_json"\} 1$/m);
    expect(text).toMatch(/^bunchat_messages_in_total 3$/m);
    expect(text).toMatch(/^bunchat_presence_frames_total \d+$/m);
    for (const name of ["rate_limited_total", "zombies_terminated_total", "bytes_in_total", "bytes_out_total", "messages_out_total"]) {
      expect(text).toContain(`bunchat_${name}`);
    }
  });
});

// The server API on one node (docs/API.md): every endpoint with good and bad input, with
// the API key and without one (this machine only), each action logged and counted.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type ChatServer } from "../src/app.ts";
import { testConfig, type Config } from "../src/config.ts";
import { createLogger } from "../src/obs/log.ts";
import { apiClient, callApi } from "./helpers/api.ts";
import { eventually, handshake, TestClient, type Frame } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";

const fixture = serverFixture({ rateLimit: 0, presenceWindow: 10 });
const KEY = "k3y-for-tests-0123456789";

const base = (s: ChatServer) => `http://127.0.0.1:${s.port}`;
const connect = (query: Record<string, string | number>) => fixture.connect(query);

/** A server whose log lines the test reads. */
async function withLog(overrides: Partial<Config> = {}): Promise<{ server: ChatServer; lines: string[] }> {
  const lines: string[] = [];
  const server = fixture.adopt(await createServer(testConfig({ rateLimit: 0, presenceWindow: 10, logLevel: "info", ...overrides }), { log: createLogger("info", undefined, (l) => lines.push(l)) }));
  return { server, lines };
}

describe("announcements", () => {
  test("the tutorial's system announcement: one request, a system frame on every connection", async () => {
    const s = await fixture.start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob", room: "dev" });
    const bobAgain = await connect({ name: "bob", room: "lobby", resume: bob.frames[0]!.resume as string });
    const answer = await apiClient(base(s)).post("/api/announce", { text: "📢 系统公告：服务器重启中..." });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ connections: 3, nodes: ["local"], missing: [] });
    for (const c of [alice, bob, bobAgain]) expect(await c.next("system")).toEqual({ type: "system", text: "📢 系统公告：服务器重启中..." });
  });

  test("to one room: only its members hear it, with the room named", async () => {
    const s = await fixture.start();
    const alice = await connect({ name: "alice", room: "dev" });
    const bob = await connect({ name: "bob" });
    const api = apiClient(base(s));
    expect((await api.post("/api/announce", { text: "dev only", room: "DEV" })).body).toEqual({ room: "dev", text: "dev only" });
    expect(await alice.next("system")).toEqual({ type: "system", text: "dev only", room: "dev" });
    await api.post("/api/announce", { text: "everyone" });
    expect((await bob.next("system")).text).toBe("everyone"); // the first system frame bob gets
    expect((await api.post("/api/announce", { text: "x", room: "no spaces" })).body.error).toBe("bad_room");
    expect((await api.post("/api/announce", { text: "  " })).body.error).toBe("empty_text");
    expect((await api.post("/api/announce", {})).body.error).toBe("bad_field");
  });
});

describe("messages from the backend", () => {
  test("a bot's room message is stored and numbered like any other, and says it is a bot's", async () => {
    const s = await fixture.start();
    const alice = await connect({ name: "alice" });
    alice.send("first");
    await alice.next("message");
    const api = apiClient(base(s));
    const answer = await api.post("/api/rooms/lobby/messages", { text: "deploy finished", from: "CI" });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ type: "message", id: 2, room: "lobby", from: "CI", text: "deploy finished", bot: true });
    expect(await alice.next("message")).toEqual(answer.body as Frame);
    const history = await api.get("/api/rooms/lobby/messages");
    expect((history.body.messages as Frame[]).map((m) => [m.from, m.bot])).toEqual([["alice", undefined], ["CI", true]]);
    expect((await api.post("/api/rooms/lobby/messages", { text: "default sender" })).body.from).toBe("system");
  });

  test("bad input: 400 with {error, message}; not JSON 400; not said to be JSON 415", async () => {
    const s = await fixture.start();
    const api = apiClient(base(s));
    const cases: [unknown, string][] = [
      [{ text: "" }, "empty_text"],
      [{ text: "x".repeat(4001) }, "text_too_long"],
      [{ text: "bell\u0007" }, "bad_field"],
      [{ text: 42 }, "bad_field"],
      [{ text: "hi", from: "a\u200bb" }, "bad_name"],
      [{ text: "hi", from: 7 }, "bad_field"],
      [[1, 2], "bad_json"],
      ["{not json", "bad_json"],
      ["null", "bad_json"],
    ];
    for (const [body, error] of cases) {
      const answer = await api.post("/api/rooms/lobby/messages", body);
      expect({ body, status: answer.status, error: answer.body.error }).toEqual({ body, status: 400, error });
      expect(typeof answer.body.message).toBe("string");
    }
    expect((await api.post("/api/rooms/bad%20room/messages", { text: "x" })).body.error).toBe("bad_room");
    const plain = await callApi(base(s), "/api/rooms/lobby/messages", { method: "POST", body: '{"text":"x"}', headers: { "content-type": "text/plain" } });
    expect([plain.status, plain.body.error]).toEqual([415, "bad_content_type"]);
    const huge = await api.post("/api/announce", { text: "x".repeat(70 * 1024) });
    expect(huge.status).toBe(413);
    // Sent in chunks, with no Content-Length: the limit is on bytes read, not on characters
    // (30,000 three-byte characters are 90 KB), and reading stops at the limit.
    for (const body of [JSON.stringify({ text: "語".repeat(30_000) }), JSON.stringify({ text: "x".repeat(200 * 1024) })]) {
      const bytes = new TextEncoder().encode(body);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < bytes.length; at += 8192) controller.enqueue(bytes.subarray(at, at + 8192));
          controller.close();
        },
      });
      const chunked = await fetch(`${base(s)}/api/announce`, { method: "POST", body: stream, headers: { "content-type": "application/json" } });
      expect([chunked.status, ((await chunked.json()) as { error?: string }).error]).toEqual([413, "body_too_large"]);
    }
  });

  test("a bot's private message reaches every connection of the person, or waits for them", async () => {
    const s = await fixture.start();
    const alice = await connect({ name: "alice" });
    const aliceAgain = await connect({ name: "alice", resume: alice.frames[0]!.resume as string });
    const api = apiClient(base(s));
    const sent = await api.post("/api/users/ALICE/messages", { text: "your order shipped", from: "shop" });
    expect(sent.status).toBe(201);
    expect(sent.body).toMatchObject({ type: "private", from: "shop", to: "alice", text: "your order shipped", bot: true, state: "delivered" });
    for (const c of [alice, aliceAgain]) expect(await c.next("private")).toMatchObject({ from: "shop", text: "your order shipped", bot: true, box: 1 });
    alice.close();
    aliceAgain.close();
    await eventually(async () => (await api.get("/api/users/alice")).body.online === false, 3000, "alice away");
    expect((await api.post("/api/users/alice/messages", { text: "while you were away" })).body.state).toBe("queued");
    const back = await connect({ name: "alice", resume: alice.frames[0]!.resume as string, inbox: 1 });
    expect(await back.next("private")).toMatchObject({ from: "system", text: "while you were away", bot: true, box: 2 });
    expect((await api.post("/api/users/nobody/messages", { text: "hi" })).status).toBe(404);
  });

  test("with history off, a private message to someone away is refused (409)", async () => {
    const s = await fixture.start({ historyDb: "off" });
    const alice = await connect({ name: "alice" });
    alice.close();
    const api = apiClient(base(s));
    await eventually(async () => (await api.get("/api/users/alice")).body.online === false, 3000, "alice away");
    const answer = await api.post("/api/users/alice/messages", { text: "hi" });
    expect([answer.status, answer.body.error]).toEqual([409, "recipient_away"]);
  });
});

describe("what is going on", () => {
  test("rooms with their counts, paged by name", async () => {
    const s = await fixture.start();
    await connect({ name: "a1", room: "alpha" });
    await connect({ name: "a2", room: "alpha" });
    await connect({ name: "b1", room: "beta" });
    await connect({ name: "g1", room: "gamma" });
    const api = apiClient(base(s));
    const first = await api.get("/api/rooms?limit=2");
    expect(first.body).toEqual({ rooms: [{ room: "alpha", online: 2 }, { room: "beta", online: 1 }], next: "beta" });
    expect((await api.get("/api/rooms?limit=2&cursor=beta")).body).toEqual({ rooms: [{ room: "gamma", online: 1 }], next: null });
    expect((await api.get("/api/rooms?limit=0")).body.error).toBe("bad_limit");
    expect((await api.get("/api/rooms?limit=x")).body.error).toBe("bad_limit");
    expect((await api.get("/api/rooms?cursor=no%20spaces")).body.error).toBe("bad_room");
  });

  test("a room's people, page by page", async () => {
    const s = await fixture.start();
    const names = ["p1", "p2", "p3", "p4", "p5"];
    for (const name of names) await connect({ name });
    const api = apiClient(base(s));
    const seen: string[] = [];
    let cursor: string | null = "0";
    for (let i = 0; cursor !== null && i < 10; i++) {
      const page = await api.get(`/api/rooms/lobby/members?limit=2&cursor=${cursor}`);
      expect(page.body.online).toBe(5);
      seen.push(...(page.body.members as { name: string; id: string }[]).map((m) => m.name));
      cursor = page.body.next as string | null;
    }
    expect(seen.sort()).toEqual(names);
    expect((await api.get("/api/rooms/lobby/members?cursor=abc")).body.error).toBe("bad_cursor");
    expect((await api.get("/api/rooms/empty/members")).body).toEqual({ room: "empty", online: 0, members: [], next: null });
  });

  test("a user's connections (with address and rooms) and rooms", async () => {
    const s = await fixture.start();
    const alice = await connect({ name: "alice" });
    alice.send({ type: "join", room: "dev" });
    await alice.next("joined");
    await connect({ name: "alice", room: "ops", resume: alice.frames[0]!.resume as string });
    const api = apiClient(base(s));
    const answer = await api.get("/api/users/Alice");
    expect(answer.body).toMatchObject({ name: "alice", online: true, rooms: ["dev", "lobby", "ops"], nodes: ["local"], missing: [], sanctions: [] });
    expect(answer.body.id).toBe((alice.frames[0]!.you as { person: string }).person);
    const connections = answer.body.connections as { node: string; ip: string; rooms: string[] }[];
    expect(connections.map((c) => [c.node, c.ip, c.rooms.sort()])).toEqual([["local", "127.0.0.1", ["dev", "lobby"]], ["local", "127.0.0.1", ["ops"]]]);
    expect((await api.get("/api/users/nobody")).status).toBe(404);
    expect((await api.get("/api/users/%E2%80%8B")).body.error).toBe("bad_name");
  });
});

describe("moderation", () => {
  test("kick closes every connection of the person with 4001 and the reason", async () => {
    const s = await fixture.start();
    const alice = await connect({ name: "alice" });
    const aliceAgain = await connect({ name: "alice", room: "dev", resume: alice.frames[0]!.resume as string });
    const bob = await connect({ name: "bob" });
    const answer = await apiClient(base(s)).post("/api/users/alice/kick", { reason: "spamming the lobby" });
    expect(answer.body).toMatchObject({ name: "alice", closed: 2, nodes: ["local"], missing: [] });
    for (const c of [alice, aliceAgain]) expect(await c.closed()).toEqual({ code: 4001, reason: "spamming the lobby" });
    expect(bob.closeEvent).toBeNull();
    // A kick is not a ban: they may come back.
    await connect({ name: "alice", resume: alice.frames[0]!.resume as string });
    // A body is optional; the reason then says "kicked". A reason too long for a close frame is cut at 123 bytes.
    const carol = await connect({ name: "carol" });
    await callApi(base(s), "/api/users/carol/kick", { method: "POST" });
    expect(await carol.closed()).toEqual({ code: 4001, reason: "kicked" });
    const dave = await connect({ name: "dave" });
    await apiClient(base(s)).post("/api/users/dave/kick", { reason: "踢".repeat(100) });
    expect(await dave.closed()).toEqual({ code: 4001, reason: "踢".repeat(41) });
    expect((await apiClient(base(s)).post("/api/users/nobody/kick")).status).toBe(404);
  });

  test("a name with % in it is the name in the path, decoded once: the kick reaches its holder, not another person", async () => {
    const s = await fixture.start();
    const odd = await connect({ name: "x%41" });
    const other = await connect({ name: "xA" });
    const answer = await apiClient(base(s)).post(`/api/users/${encodeURIComponent("x%41")}/kick`, { reason: "you" });
    expect(answer.body).toMatchObject({ name: "x%41", closed: 1 });
    expect(await odd.closed()).toEqual({ code: 4001, reason: "you" });
    expect(other.closeEvent).toBeNull();
    expect((await apiClient(base(s)).get(`/api/users/${encodeURIComponent("50%off")}`)).body.error).toBe("no_such_user");
  });

  test("a name ban: its holder is closed with 4003, it and its look-alikes are refused at admission, until lifted", async () => {
    const s = await fixture.start();
    const alice = await connect({ name: "alice" });
    const api = apiClient(base(s));
    const banned = await api.post("/api/bans", { name: "alice", reason: "impersonating staff" });
    expect(banned.status).toBe(201);
    expect(banned.body).toMatchObject({ ban: { kind: "ban", target: "name", label: "alice", until: 0, reason: "impersonating staff", by: "local" }, closed: 1 });
    expect(await alice.closed()).toEqual({ code: 4003, reason: "impersonating staff" });
    for (const name of ["alice", "ALICE", "AIice"]) {
      const refused = await handshake(base(s), `/ws?name=${name}`);
      expect({ name, status: refused.status, body: await refused.json() }).toEqual({ name, status: 403, body: { error: "banned", message: "you are banned from this chat: impersonating staff" } });
    }
    const preflight = await fetch(`${base(s)}/api/admission?name=alice`);
    expect([preflight.status, (await preflight.json()).error]).toEqual([403, "banned"]);
    // Nobody takes it by renaming either.
    const bob = await connect({ name: "bob" });
    bob.send({ type: "nick", name: "Alice", ref: "n" });
    expect(await bob.next("error")).toMatchObject({ code: "banned", ref: "n" });
    const id = (banned.body.ban as { id: string }).id;
    expect((await api.get("/api/bans")).body.bans).toEqual([banned.body.ban]);
    expect((await api.del(`/api/mutes/${id}`)).status).toBe(404); // a ban is not a mute
    expect((await api.del(`/api/bans/${id}`)).body).toMatchObject({ lifted: { id }, nodes: ["local"] });
    expect((await api.del(`/api/bans/${id}`)).status).toBe(404);
    await connect({ name: "alice", resume: alice.frames[0]!.resume as string });
  });

  test("a person ban follows them under any name; an IP ban (or range) refuses their address", async () => {
    const s = await fixture.start();
    const api = apiClient(base(s));
    const alice = await connect({ name: "alice" });
    const resume = alice.frames[0]!.resume as string;
    const person = (alice.frames[0]!.you as { person: string }).person;
    const ban = await api.post("/api/bans", { person, label: "alice", duration: 3600 });
    expect(ban.body.closed).toBe(1);
    const until = (ban.body.ban as { until: number; created: number }).until - (ban.body.ban as { created: number }).created;
    expect(until).toBe(3_600_000);
    await alice.closed();
    const refused = await handshake(base(s), `/ws?name=alice&resume=${resume}`);
    expect(refused.status).toBe(403);
    expect((await refused.json()).message).toMatch(/^you are banned from this chat until \d{4}-/);
    await api.del(`/api/bans/${(ban.body.ban as { id: string }).id}`);
    const bob = await connect({ name: "bob" });
    const range = await api.post("/api/bans", { ip: "::ffff:127.0.0.9/104" });
    expect(range.body).toMatchObject({ ban: { target: "ip", value: "127.0.0.0/8", label: "127.0.0.0/8" }, closed: 1 });
    expect((await bob.closed()).code).toBe(4003);
    expect((await handshake(base(s), "/ws?name=carol")).status).toBe(403);
    await api.del(`/api/bans/${(range.body.ban as { id: string }).id}`);
    await connect({ name: "carol" });
    for (const body of [{ ip: "300.1.1.1" }, { ip: "10.0.0.0/33" }, { name: "a", ip: "1.2.3.4" }, {}, { name: "" }, { name: "x", duration: 0 }, { name: "x", duration: 1.5 }, { person: "a\u0000b" }]) {
      expect({ body, status: (await api.post("/api/bans", body)).status }).toEqual({ body, status: 400 });
    }
  });

  test("a mute in a room refuses sends there with error muted and when it ends; everywhere covers private messages; unmute", async () => {
    const s = await fixture.start();
    const api = apiClient(base(s));
    const alice = await connect({ name: "alice" });
    await connect({ name: "bob" });
    alice.send({ type: "join", room: "dev" });
    await alice.next("joined");
    const mute = await api.post("/api/mutes", { name: "alice", room: "lobby", duration: 600, reason: "cool off" });
    expect(mute.body).toMatchObject({ mute: { kind: "mute", target: "person", label: "alice", room: "lobby", reason: "cool off" } });
    const until = (mute.body.mute as { until: number }).until;
    alice.send({ type: "chat", room: "lobby", text: "let me talk", ref: 1 });
    expect(await alice.next("error")).toEqual({ type: "error", code: "muted", message: `you are muted in lobby until ${new Date(until).toISOString()}: cool off`, until, ref: 1 });
    alice.send({ type: "typing", room: "lobby" });
    alice.send({ type: "typing", room: "dev" });
    expect((await alice.next("typing")).room).toBe("dev"); // not even typing where muted
    alice.send({ type: "chat", room: "dev", text: "fine here", ref: 2 });
    expect(await alice.next("message")).toMatchObject({ text: "fine here", ref: 2 });
    alice.send({ type: "private", to: "bob", text: "psst", ref: 3 });
    expect(await alice.next("private")).toMatchObject({ text: "psst", ref: 3 });
    const everywhere = await api.post("/api/mutes", { person: (alice.frames[0]!.you as { person: string }).person });
    alice.send({ type: "private", to: "bob", text: "psst again", ref: 4 });
    const refused = await alice.next("error");
    expect(refused).toMatchObject({ code: "muted", message: "you are muted", ref: 4 });
    expect(refused.until).toBeUndefined();
    expect(((await api.get("/api/mutes")).body.mutes as unknown[]).length).toBe(2);
    expect(((await api.get("/api/users/alice")).body.sanctions as unknown[]).length).toBe(2);
    await api.del(`/api/mutes/${(everywhere.body.mute as { id: string }).id}`);
    await api.del(`/api/mutes/${(mute.body.mute as { id: string }).id}`);
    alice.send({ type: "chat", room: "lobby", text: "back", ref: 5 });
    expect(await alice.next("message")).toMatchObject({ text: "back", ref: 5 });
    expect((await api.post("/api/mutes", { ip: "1.2.3.4" })).status).toBe(400);
    expect((await api.post("/api/mutes", { name: "nobody" })).status).toBe(404);
  });

  test("a muted person cannot announce a new name where they are muted (a nick is said to the room too)", async () => {
    const s = await fixture.start();
    const api = apiClient(base(s));
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    alice.send({ type: "join", room: "dev" });
    await alice.next("joined");
    const mute = await api.post("/api/mutes", { name: "alice", room: "lobby" });
    alice.send({ type: "nick", name: "buy-pills-now", ref: 1 });
    expect(await alice.next("error")).toMatchObject({ code: "muted", ref: 1 });
    await api.del(`/api/mutes/${(mute.body.mute as { id: string }).id}`);
    alice.send({ type: "nick", name: "alicia", ref: 2 });
    expect(await bob.next("nick")).toMatchObject({ from: "alice", name: "alicia" }); // the first nick bob hears
  });

  test("delete a message: gone from the history, the room told to hide it", async () => {
    const s = await fixture.start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    for (const text of ["one", "two", "three"]) alice.send(text);
    await bob.next("message", (m) => m.text === "three");
    const api = apiClient(base(s));
    expect((await api.del("/api/rooms/lobby/messages/2")).body).toEqual({ room: "lobby", id: 2, removed: true });
    for (const c of [alice, bob]) expect(await c.next("deleted")).toEqual({ type: "deleted", room: "lobby", id: 2 });
    expect(((await api.get("/api/rooms/lobby/messages")).body.messages as Frame[]).map((m) => m.text)).toEqual(["one", "three"]);
    const late = await connect({ name: "carol" });
    expect((late.frames[0]!.history as Frame[]).map((m) => m.text)).toEqual(["one", "three"]);
    expect((await api.del("/api/rooms/lobby/messages/2")).status).toBe(404);
    expect((await api.del("/api/rooms/lobby/messages/x")).body.error).toBe("bad_id");
    expect((await api.del("/api/rooms/lobby/messages/0")).body.error).toBe("bad_id");
  });

  test("bans and mutes survive a restart (kept in the history file)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bunchat-bans-"));
    try {
      const db = join(dir, "chat.db");
      const first = await fixture.start({ historyDb: db });
      await connect({ name: "bob" });
      await apiClient(base(first)).post("/api/bans", { name: "mallory", reason: "spam" });
      await apiClient(base(first)).post("/api/mutes", { name: "bob", duration: 600 });
      await first.stop();
      const second = await fixture.start({ historyDb: db });
      expect(await (await handshake(base(second), "/ws?name=mallory")).json()).toEqual({ error: "banned", message: "you are banned from this chat: spam" });
      expect(((await apiClient(base(second)).get("/api/mutes")).body.mutes as unknown[]).length).toBe(1);
      await apiClient(base(second)).post("/api/bans", { ip: "127.0.0.0/8", reason: "loopback is closed" });
      await second.stop();
      const third = await fixture.start({ historyDb: db });
      expect(await (await handshake(base(third), "/ws?name=trent")).json()).toEqual({ error: "banned", message: "you are banned from this chat: loopback is closed" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the door's lock", () => {
  const endpoints: [string, string][] = [
    ["POST", "/api/announce"], ["POST", "/api/rooms/lobby/messages"], ["DELETE", "/api/rooms/lobby/messages/1"],
    ["GET", "/api/rooms"], ["GET", "/api/rooms/lobby/members"], ["GET", "/api/users/alice"], ["POST", "/api/users/alice/messages"],
    ["POST", "/api/users/alice/kick"], ["GET", "/api/bans"], ["POST", "/api/bans"], ["DELETE", "/api/bans/x"],
    ["GET", "/api/mutes"], ["POST", "/api/mutes"], ["DELETE", "/api/mutes/x"],
  ];

  test("with API_KEY: no key or a wrong one is 401 on every endpoint; Bearer and X-API-Key open it; the key is never logged", async () => {
    const { server: s, lines } = await withLog({ apiKey: KEY });
    for (const [method, path] of endpoints) {
      for (const key of [undefined, "wrong"]) {
        const answer = await callApi(base(s), path, { method, key, body: method === "POST" ? {} : undefined });
        expect({ method, path, status: answer.status, error: answer.body.error }).toEqual({ method, path, status: 401, error: key ? "bad_api_key" : "api_key_required" });
        expect(answer.headers.get("www-authenticate")).toBe('Bearer realm="bunchat"');
      }
    }
    expect((await callApi(base(s), "/api/rooms", { key: KEY })).status).toBe(200);
    expect((await callApi(base(s), "/api/rooms", { headers: { "x-api-key": KEY } })).status).toBe(200);
    // The scheme is case-insensitive (RFC 9110 §11.1): "bearer" is Bearer.
    expect((await callApi(base(s), "/api/rooms", { headers: { authorization: `bearer ${KEY}` } })).status).toBe(200);
    // The public endpoints stay public.
    expect((await fetch(`${base(s)}/api/rooms/lobby/messages`)).status).toBe(200);
    await callApi(base(s), "/api/announce", { key: KEY, body: { text: "hello" } });
    await eventually(() => lines.some((l) => l.includes('"api_bad_key"')), 2000, "the bad key logged");
    expect(lines.join("\n")).not.toContain(KEY);
    expect(lines.join("\n")).not.toContain("wrong");
  });

  test("without API_KEY: only this machine, not through a proxy, not a look-alike host, not another site's page", async () => {
    const s = await fixture.start();
    const url = base(s);
    expect((await callApi(url, "/api/rooms")).status).toBe(200);
    expect((await callApi(url, "/api/rooms", { headers: { origin: url } })).status).toBe(200);
    const foreign: Record<string, string>[] = [{ "x-forwarded-for": "203.0.113.9" }, { forwarded: "for=203.0.113.9" }, { host: "attacker.example:80" }, { origin: "http://attacker.example" }];
    for (const headers of foreign) {
      const answer = await callApi(url, "/api/rooms", { headers });
      expect({ headers, status: answer.status, error: answer.body.error }).toEqual({ headers, status: 403, error: "api_local_only" });
    }
    const proxied = await fixture.start({ trustProxy: true });
    expect((await callApi(base(proxied), "/api/rooms", { headers: { "x-forwarded-for": "127.0.0.1" } })).status).toBe(403);
  });

  test("with AUTH_SECRET, the history API takes a token or the API key (not this machine alone)", async () => {
    const s = await fixture.start({ authSecret: "token-secret", apiKey: KEY });
    const history = `${base(s)}/api/rooms/lobby/messages`;
    expect((await fetch(history)).status).toBe(401);
    expect((await fetch(history, { headers: { "x-api-key": KEY } })).status).toBe(200);
    expect((await fetch(history, { headers: { "x-api-key": "wrong" } })).status).toBe(401);
    const keyless = await fixture.start({ authSecret: "token-secret" });
    expect((await fetch(`${base(keyless)}/api/rooms/lobby/messages`)).status).toBe(401);
  });

  test("wrong methods are 405 with Allow", async () => {
    const s = await fixture.start();
    for (const [path, allow] of [["/admin", "GET, HEAD"], ["/api/announce", "POST"], ["/api/rooms", "GET, HEAD"], ["/api/bans", "GET, POST, HEAD"], ["/api/bans/x", "DELETE"], ["/api/users/alice/kick", "POST"], ["/api/rooms/lobby/messages", "GET, POST, HEAD"]] as const) {
      const res = await fetch(`${base(s)}${path}`, { method: "PUT" });
      expect({ path, status: res.status, allow: res.headers.get("allow") }).toEqual({ path, status: 405, allow });
    }
  });

  test("each action is one log line (who, what, target) and counted in /metrics", async () => {
    const { server: s, lines } = await withLog({ apiKey: KEY });
    await connect({ name: "alice" });
    await callApi(base(s), "/api/users/alice/kick", { key: KEY, body: { reason: "r" }, headers: { "x-actor": "ops-jane" } });
    await callApi(base(s), "/api/rooms", { key: KEY });
    await callApi(base(s), "/api/rooms", {});
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === "api");
    expect(logged).toEqual([expect.objectContaining({ action: "kick", by: "api-key", ip: "127.0.0.1", actor: "ops-jane", target: "user alice", closed: 1, reason: "r" })]);
    const metrics = await (await fetch(`${base(s)}/metrics`)).text();
    expect(metrics).toContain('bunchat_api_requests_total{action="kick"} 1');
    expect(metrics).toContain('bunchat_api_requests_total{action="rooms"} 1');
    expect(metrics).toContain('bunchat_api_errors_total{error="api_key_required"} 1');
  });
});

describe("a banned client", () => {
  test("sees its WebSocket handshake fail (a refused upgrade, no socket)", async () => {
    const s = await fixture.start();
    await apiClient(base(s)).post("/api/bans", { name: "eve" });
    await expect(TestClient.connect(s.wsUrl, { name: "eve" })).rejects.toThrow();
  });
});

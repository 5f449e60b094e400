// bunchat/client against a real server (one node): requests answered by the server's
// echo or error, presence as a live set, history pages, the queue while offline, resume
// keys, and recovery without gaps or duplicates through dropped sockets and restarts.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatServer } from "../src/app.ts";
import { ChatError, connect, type ChatClient, type ConnectOptions, type Gap, type MessageFrame, type PrivateFrame, type Status } from "../src/client/index.ts";
import type { Config } from "../src/config.ts";
import { Backoff } from "../src/client/backoff.ts";
import { InboxCursor } from "../src/client/inbox.ts";
import { RoomState } from "../src/client/room-state.ts";
import { explainRefusal, type FetchLike } from "../src/client/transport.ts";
import { signToken } from "../src/transport/jwt.ts";
import { eventually, TestClient } from "./helpers/client.ts";
import { startServer } from "./helpers/server.ts";

const dir = mkdtempSync(join(tmpdir(), "bunchat-sdk-"));
const servers: ChatServer[] = [];
const clients: ChatClient[] = [];
let dbCount = 0;

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.stop();
});
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

async function serve(overrides: Partial<Config> = {}): Promise<ChatServer> {
  const s = await startServer({ historyDb: join(dir, `chat-${++dbCount}.db`), rateLimit: 0, presenceWindow: 20, ...overrides });
  servers.push(s);
  return s;
}

/** The same server again on the same port and history file (a restart). */
async function restart(s: ChatServer, overrides: Partial<Config> = {}): Promise<ChatServer> {
  await s.stop();
  const again = await startServer({ historyDb: join(dir, `chat-${dbCount}.db`), rateLimit: 0, presenceWindow: 20, port: s.port, ...overrides });
  servers.push(again);
  return again;
}

/** A WebSocket class whose sockets the test can reach, to drop them as a network would. */
function droppable(): { WebSocket: ConnectOptions["WebSocket"]; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string, protocols?: string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WebSocket: Tracked, sockets };
}

/** Connect and wait for the welcome; fast reconnects for tests. */
async function client(s: ChatServer, options: ConnectOptions = {}): Promise<ChatClient> {
  const c = connect(s.wsUrl, { reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  clients.push(c);
  await c.ready();
  return c;
}

/** Everything a client delivers of one kind, as it arrives. */
function collect<T extends MessageFrame | PrivateFrame>(c: ChatClient, event: "message" | "private"): T[] {
  const got: T[] = [];
  if (event === "message") c.on("message", (m) => got.push(m as T));
  else c.on("private", (m) => got.push(m as T));
  return got;
}

function statusReached(c: ChatClient, status: Status): Promise<void> {
  if (c.status === status) return Promise.resolve();
  return new Promise((resolve) => {
    const off = c.on("status", (s) => {
      if (s !== status) return;
      off();
      resolve();
    });
  });
}

describe("requests", () => {
  test("send and private resolve with the stored message; errors reject with the server's code", async () => {
    const s = await serve();
    const alice = await client(s, { name: "alice" });
    const bob = await client(s, { name: "bob" });
    const bobSees = collect<MessageFrame>(bob, "message");
    const stored = await alice.send("hello");
    expect(stored).toMatchObject({ type: "message", room: "lobby", from: "alice", text: "hello" });
    expect(stored.id).toBeGreaterThan(0);
    expect(stored.ts).toBeGreaterThan(0);
    await eventually(() => bobSees.some((m) => m.id === stored.id));

    const priv = await alice.private("bob", "psst");
    expect(priv).toMatchObject({ from: "alice", to: "bob", text: "psst", state: "delivered" });
    expect(alice.conversations.has("bob")).toBe(true);

    const noUser = await alice.private("nobody", "hi").catch((e: unknown) => e);
    expect(noUser).toBeInstanceOf(ChatError);
    expect((noUser as ChatError).code).toBe("no_such_user");
    await expect(alice.send("x", { room: "elsewhere" })).rejects.toMatchObject({ code: "not_in_room" });
    await expect(alice.send("   ")).rejects.toMatchObject({ code: "empty_text" });

    const dev = await alice.join("dev");
    expect(dev.members.has("alice")).toBe(true);
    expect(alice.currentRoom).toBe("dev");
    await alice.send("in dev");
    await alice.leave("dev");
    expect(alice.rooms.has("dev")).toBe(false);
    expect(await alice.nick("alicia")).toBe("alicia");
    expect(alice.me?.name).toBe("alicia");
    expect(await alice.who("lobby")).toMatchObject({ online: 2, members: expect.arrayContaining(["alicia", "bob"]) });
    expect(await alice.ping()).toBeGreaterThanOrEqual(0);
  });

  test("presence is a live member set", async () => {
    const s = await serve();
    const alice = await client(s, { name: "alice" });
    const lobby = alice.rooms.get("lobby")!;
    expect([...lobby.members]).toEqual(["alice"]);
    const bob = await client(s, { name: "bob" });
    await eventually(() => lobby.members.has("bob"), 5000, "bob in alice's member set");
    expect(lobby.online).toBe(2);
    await bob.nick("robert");
    await eventually(() => lobby.members.has("robert") && !lobby.members.has("bob"), 5000, "the rename in the set");
    bob.close();
    await eventually(() => !lobby.members.has("robert"), 5000, "robert gone from the set");
    expect(lobby.online).toBe(1);
  });

  test("history() pages backwards through a room and a conversation", async () => {
    const s = await serve();
    const alice = await client(s, { name: "alice" });
    await client(s, { name: "bob" });
    const sent: number[] = [];
    for (let i = 0; i < 120; i++) sent.push((await alice.send(`m${i}`)).id);
    const pages: number[][] = [];
    for await (const page of alice.history({ room: "lobby" }, { pageSize: 50 })) pages.push(page.map((m) => m.id));
    expect(pages.map((p) => p.length)).toEqual([50, 50, 20]);
    expect(pages.reverse().flat()).toEqual(sent);

    for (let i = 0; i < 3; i++) await alice.private("bob", `p${i}`);
    const conversation: string[] = [];
    for await (const page of alice.history({ with: "bob" }, { pageSize: 2 })) conversation.unshift(...page.map((m) => m.text));
    expect(conversation).toEqual(["p0", "p1", "p2"]);
  });
});

describe("identity", () => {
  test("the resume key brings back the same person; without it the name is refused for good", async () => {
    const s = await serve();
    const keys: string[] = [];
    const alice = connect(s.wsUrl, { name: "alice" });
    clients.push(alice);
    alice.on("resume", (key) => keys.push(key));
    const welcome = await alice.ready();
    expect(keys).toEqual([alice.resumeKey!]);
    const tab = await client(s, { name: "alice", resume: alice.resumeKey! });
    expect(tab.me?.person).toBe(welcome.you.person);

    const stranger = connect(s.wsUrl, { name: "alice", reconnect: { initialDelayMs: 10 } });
    clients.push(stranger);
    const refusals: string[] = [];
    stranger.on("refused", (r, willRetry) => refusals.push(`${r.error}:${willRetry}`));
    await expect(stranger.ready()).rejects.toMatchObject({ code: "name_taken" });
    expect(refusals).toEqual(["name_taken:false"]);
    expect(stranger.status).toBe("closed");
    await expect(stranger.send("hi")).rejects.toMatchObject({ code: "closed" });
  });

  test("after a reconnect the client is the same person, with its rooms and its name", async () => {
    const s = await serve();
    const { WebSocket, sockets } = droppable();
    const alice = await client(s, { name: "alice", rooms: ["dev"], WebSocket });
    await eventually(() => alice.rooms.get("dev")?.epoch !== undefined, 5000, "dev joined");
    const person = alice.me!.person;
    await alice.nick("alicia");
    await alice.join("dev"); // already in it: it becomes the current room
    expect(alice.currentRoom).toBe("dev");
    sockets.at(-1)!.close();
    await statusReached(alice, "offline");
    await statusReached(alice, "online");
    expect(alice.me).toMatchObject({ person, name: "alicia" });
    expect([...alice.rooms.keys()]).toEqual(["lobby", "dev"]);
    expect(alice.currentRoom).toBe("dev");
    expect(await alice.send("back in dev")).toMatchObject({ room: "dev", from: "alicia" });
  });

  test("someone who took a name this person had before is someone else: their conversation is theirs", async () => {
    const s = await serve();
    const alice = await client(s, { name: "alice" });
    await alice.nick("alicia"); // "alice" is free again at once
    const bob = await client(s, { name: "bob" });
    await bob.private("alicia", "hi alicia");
    const stranger = await client(s, { name: "alice" });
    const got = collect<PrivateFrame>(alice, "private");
    await stranger.private("alicia", "I am the new alice");
    await eventually(() => got.length === 1, 5000, "the stranger's message");
    expect([...alice.conversations].sort()).toEqual(["alice", "bob"]);
  });
});

describe("identity", () => {
  test("a tab that was offline while another tab renamed the person comes back as that person, under the new name", async () => {
    const s = await serve();
    const tab1 = await client(s, { name: "alice" });
    const key = tab1.resumeKey!;
    const { WebSocket, sockets } = droppable();
    let down = false;
    // A network that is down for a while: no socket can be opened.
    class Flaky extends (WebSocket as unknown as typeof globalThis.WebSocket) {
      constructor(url: string, protocols?: string[]) {
        if (down) throw new Error("network down");
        super(url, protocols);
      }
    }
    const tab2 = await client(s, { name: "alice", resume: key, WebSocket: Flaky });
    const person = tab1.me!.person;
    const resumes: string[] = [];
    tab2.on("resume", (k) => resumes.push(k));
    down = true;
    sockets.at(-1)!.close();
    await statusReached(tab2, "offline");
    expect(await tab1.nick("alicia")).toBe("alicia");
    down = false;
    await statusReached(tab2, "online");
    expect(tab2.me).toMatchObject({ person, name: "alicia" });
    expect(tab2.resumeKey).toBe(key);
    expect(resumes).toEqual([]);
  });
});

describe("recovery", () => {
  test("no gaps and no duplicates while messages flow and sockets drop on both sides", async () => {
    const s = await serve();
    const reader = droppable();
    const writer = droppable();
    const alice = await client(s, { name: "alice", WebSocket: writer.WebSocket, queueLimit: 1000 });
    const bob = await client(s, { name: "bob", WebSocket: reader.WebSocket });
    const got = collect<MessageFrame>(bob, "message");
    const acks: Promise<MessageFrame>[] = [];
    for (let i = 0; i < 300; i++) {
      acks.push(alice.send(`n${i}`));
      if (i % 60 === 30 && bob.status === "online") reader.sockets.at(-1)!.close(); // the reader's network blips
      if (i % 100 === 70 && alice.status === "online") writer.sockets.at(-1)!.close(); // so does the writer's, with sends in flight
      if (i % 10 === 0) await Bun.sleep(1);
    }
    const stored = await Promise.all(acks);
    await eventually(() => got.length >= 300 && got.at(-1)!.id === stored.at(-1)!.id, 10_000, "every message at bob");
    expect(reader.sockets.length).toBeGreaterThanOrEqual(3);
    expect(got.map((m) => m.text)).toEqual(Array.from({ length: 300 }, (_, i) => `n${i}`));
    const ids = got.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    // Each send was stored once, whatever the writer's drops did to its in-flight frames.
    const history: string[] = [];
    for await (const page of bob.history({ room: "lobby" }, { pageSize: 1000 })) history.unshift(...page.map((m) => m.text));
    expect(history).toEqual(Array.from({ length: 300 }, (_, i) => `n${i}`));
  });

  test("private messages missed while away arrive once, from the inbox", async () => {
    const s = await serve();
    const { WebSocket, sockets } = droppable();
    const alice = await client(s, { name: "alice", WebSocket });
    const bob = await client(s, { name: "bob" });
    const got = collect<PrivateFrame>(alice, "private");
    await bob.private("alice", "before");
    await eventually(() => got.length === 1);
    sockets.at(-1)!.close();
    await statusReached(alice, "offline");
    const queued = await bob.private("alice", "while away");
    await statusReached(alice, "online");
    await bob.private("alice", "after");
    await eventually(() => got.length >= 3, 5000, "three private messages");
    expect(got.map((m) => m.text)).toEqual(["before", "while away", "after"]);
    expect(new Set(got.map((m) => m.box)).size).toBe(3);
    expect(["delivered", "queued"]).toContain(queued.state!);
  });

  test("requests made while offline wait in the queue and go out after the catch-up; a full queue refuses new ones", async () => {
    const s = await serve();
    const alice = await client(s, { name: "alice", queueLimit: 3, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } });
    await alice.send("first");
    await s.stop();
    await statusReached(alice, "offline");
    const queued = [alice.send("q1"), alice.send("q2"), alice.private("alice", "note to self")];
    expect(alice.queued).toBe(3);
    await expect(alice.send("one too many")).rejects.toMatchObject({ code: "queue_full" });
    const back = await restart(s);
    const [q1, q2, note] = (await Promise.all(queued)) as [MessageFrame, MessageFrame, PrivateFrame];
    expect([q1.text, q2.text, note.text]).toEqual(["q1", "q2", "note to self"]);
    expect(q2.id).toBe(q1.id + 1);
    const bob = await client(back, { name: "bob" });
    const seen: string[] = [];
    for await (const page of bob.history({ room: "lobby" })) seen.unshift(...page.map((m) => m.text));
    expect(seen).toEqual(["first", "q1", "q2"]);
  });

  test("a queue flushed into the server's rate limit is sent again, not lost", async () => {
    const s = await serve({ rateLimit: 10, rateBurst: 5, rateAbuseClose: 0 });
    const { WebSocket, sockets } = droppable();
    const alice = await client(s, { name: "alice", WebSocket });
    sockets.at(-1)!.close();
    await statusReached(alice, "offline");
    const sends = Array.from({ length: 12 }, (_, i) => alice.send(`q${i}`));
    const stored = await Promise.all(sends);
    expect(stored.map((m) => m.text).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `q${i}`).sort());
  });

  test("a server restart loses nothing; what was sent meanwhile arrives in order", async () => {
    let s = await serve();
    const bob = await client(s, { name: "bob", rooms: ["dev"] });
    await eventually(() => bob.rooms.get("dev")?.epoch !== undefined);
    const got = collect<MessageFrame>(bob, "message");
    const gaps: Gap[] = [];
    bob.on("incomplete", (g) => gaps.push(g));
    const dave = await TestClient.connect(s.wsUrl, { name: "dave", room: "dev" });
    dave.send("before");
    await eventually(() => got.length === 1);
    dave.close();
    s = await restart(s);
    const carol = await TestClient.connect(s.wsUrl, { name: "carol", room: "dev" });
    carol.send("while bob was away 1");
    carol.send({ type: "chat", room: "dev", text: "while bob was away 2" });
    carol.send({ type: "join", room: "lobby" });
    await carol.next("joined");
    carol.send({ type: "chat", room: "lobby", text: "lobby while away" });
    await carol.next("message", (m) => m.text === "lobby while away");
    await eventually(() => got.length >= 4, 10_000, "the missed messages");
    carol.close();
    expect(got.map((m) => `${m.room}:${m.text}`).sort()).toEqual(["dev:before", "dev:while bob was away 1", "dev:while bob was away 2", "lobby:lobby while away"]);
    expect(gaps).toEqual([]);
  });

  test("a server that lost its history is reported as an incomplete recovery", async () => {
    let s = await serve();
    const bob = await client(s, { name: "bob" });
    const gaps: Gap[] = [];
    bob.on("incomplete", (g) => gaps.push(g));
    await bob.send("one");
    const port = s.port;
    await s.stop();
    // A new history file: a new epoch, ids start over.
    s = await serve({ port });
    await eventually(() => gaps.length > 0, 10_000, "the incomplete report");
    expect(gaps[0]).toEqual({ room: "lobby", reason: "epoch" });
    const got = collect<MessageFrame>(bob, "message");
    const alice = await client(s, { name: "alice" });
    await alice.send("new epoch");
    await eventually(() => got.some((m) => m.text === "new epoch"), 5000, "a message with a small id in the new epoch");
  });
});

describe("refusals and tokens", () => {
  test("a token is asked for before every attempt and travels as a subprotocol; a bad one stops the client", async () => {
    const s = await serve({ authSecret: "sekrit" });
    let asked = 0;
    const token = async () => {
      asked++;
      const now = Math.floor(Date.now() / 1000);
      return signToken("sekrit", { sub: "tok", iat: now, exp: now + 60 });
    };
    const { WebSocket, sockets } = droppable();
    const c = await client(s, { token, WebSocket });
    expect(c.me?.name).toBe("tok");
    expect(sockets[0]!.protocol).toBe("bearer");
    expect(sockets[0]!.url).not.toContain("token");
    sockets[0]!.close();
    await statusReached(c, "offline");
    await statusReached(c, "online");
    expect(asked).toBe(2);

    const forged = connect(s.wsUrl, { token: "not.a.token", reconnect: { initialDelayMs: 10 } });
    clients.push(forged);
    await expect(forged.ready()).rejects.toMatchObject({ code: "bad_token" });
  });

  test("a refusal that may pass is retried: a full server admits the client once there is room", async () => {
    const s = await serve({ maxConnections: 1 });
    const first = await client(s, { name: "first" });
    const second = connect(s.wsUrl, { name: "second", reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    clients.push(second);
    const refusals: string[] = [];
    second.on("refused", (r, willRetry) => refusals.push(`${r.error}:${willRetry}`));
    await eventually(() => refusals.length > 0, 5000, "a refusal");
    expect(refusals[0]).toBe("server_full:true");
    first.close();
    await second.ready();
    expect(second.me?.name).toBe("second");
  });
});

describe("the pieces", () => {
  test("asking why a handshake was refused never hangs the reconnect loop: no answer in time is an outage", async () => {
    const hanging: FetchLike = () => new Promise(() => {}); // a server (or proxy) that accepts the request and never answers
    const started = performance.now();
    expect(await explainRefusal(hanging, "http://127.0.0.1:1/api/admission", {}, 50)).toBeNull();
    expect(performance.now() - started).toBeLessThan(1000);
    const answering: FetchLike = async () => ({ json: async () => ({ ok: false, error: "banned", message: "banned until tomorrow" }) });
    expect(await explainRefusal(answering, "http://x/api/admission", {}, 50)).toEqual({ error: "banned", message: "banned until tomorrow" });
  });

  test("backoff: full jitter under a doubling ceiling, capped, reset by a success", () => {
    let r = 0.999;
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, random: () => r });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([99, 199, 399, 799, 999]);
    r = 0;
    expect(b.next()).toBe(0); // full jitter: anywhere from 0
    expect(b.attempts).toBe(6);
    b.reset();
    r = 0.5;
    expect(b.next()).toBe(50);
  });

  test("room cursor: duplicates and old ids dropped; a new epoch forgets the cursor", () => {
    const room = new RoomState("lobby", { lastId: 5, epoch: "e1" });
    const m = (id: number): MessageFrame => ({ type: "message", id, room: "lobby", from: "a", text: "t", ts: 0 });
    expect([m(5), m(6), m(6), m(4), m(7)].map((x) => room.accept(x))).toEqual([false, true, false, false, true]);
    expect(room.adoptEpoch("e1")).toBe(false);
    expect(room.adoptEpoch("e2")).toBe(true);
    expect(room.lastId).toBeUndefined();
    expect(room.accept(m(1))).toBe(true);
  });

  test("inbox cursor: by box, a jump is a gap, caught up to the welcome's position", () => {
    const inbox = new InboxCursor();
    const p = (box: number): PrivateFrame => ({ type: "private", id: box, from: "a", to: "b", text: "t", ts: 0, box });
    expect([p(3), p(3), p(4), p(7), p(5)].map((x) => inbox.accept(x))).toEqual(["new", "duplicate", "new", "after-gap", "duplicate"]);
    inbox.caughtUp(9);
    expect(inbox.last).toBe(9);
    inbox.caughtUp(2);
    expect(inbox.last).toBe(9);
  });
});

// People, not connections: one person on several tabs and devices (resume keys, token
// subjects), names held for a grace period, private messages that wait for people who
// are away, and leave / presence per person. Real server on port 0, real sockets.
import { nameKey } from "../src/protocol/names.ts";
import { describe, expect, test } from "bun:test";
import { signToken } from "../src/transport/jwt.ts";
import { SqliteIdentities } from "../src/broker/identities.ts";
import { SqliteStore } from "../src/broker/sqlite.ts";
import { eventually, handshake, quietFor, TestClient, type Frame } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";

const fixture = serverFixture({ presenceWindow: 20, rateLimit: 0 });
const { start, connect, clients } = fixture;
const SECRET = "test-secret-of-reasonable-length";
const welcomeOf = (c: TestClient) => c.frames.find((f) => f.type === "welcome")!;
const resumeOf = (c: TestClient) => welcomeOf(c).resume as string;
const personOf = (c: TestClient) => (welcomeOf(c).you as { person: string }).person;

describe("a person with several connections", () => {
  test("the first connection gets a resume key; others present it and are the same person", async () => {
    await start();
    const tab1 = await connect({ name: "alice" });
    const key = resumeOf(tab1);
    expect(key).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const tab2 = await connect({ name: "alice", resume: key });
    expect(welcomeOf(tab2).resume).toBeUndefined();
    expect(personOf(tab2)).toBe(personOf(tab1));
    const viaHeader = await connect({ name: "alice" }, { headers: { "x-resume-key": key } });
    const viaProtocol = await connect({ name: "alice" }, ["resume", key]);
    expect(new Set([personOf(viaHeader), personOf(viaProtocol)])).toEqual(new Set([personOf(tab1)]));
    expect(welcomeOf(tab2)).toMatchObject({ online: 1, members: ["alice"] });
  });

  test("without the key, or with a wrong one, the name is taken", async () => {
    const s = await start();
    const alice = await connect({ name: "alice" });
    const base = `http://127.0.0.1:${s.port}`;
    for (const path of ["/ws?name=alice", "/ws?name=ALICE", `/ws?name=alice&resume=${"x".repeat(32)}`]) {
      const res = await handshake(base, path);
      expect({ path, status: res.status }).toEqual({ path, status: 409 });
    }
    expect((await handshake(base, "/ws?name=alice&resume=short")).status).toBe(400);
    expect((await fetch(`${base}/api/admission?name=alice&resume=${resumeOf(alice)}`)).status).toBe(200);
  });

  test("presence counts people: one join for two tabs, one leave when the last closes", async () => {
    await start();
    const bob = await connect({ name: "bob" });
    const tab1 = await connect({ name: "alice" });
    await bob.next("presence", (p) => (p.joined as string[]).includes("alice"));
    const tab2 = await connect({ name: "alice", resume: resumeOf(tab1) });
    expect(welcomeOf(tab2).online).toBe(2);
    await quietFor(bob, "presence", 150, (p) => (p.joined as string[]).includes("alice"));
    tab1.close();
    await quietFor(bob, "presence", 150, (p) => (p.left as string[]).includes("alice"));
    tab2.close();
    const left = await bob.next("presence", (p) => (p.left as string[]).includes("alice"));
    expect(left.online).toBe(1);
  });

  test("room and private messages reach every connection; the sender's other tabs see what it sent", async () => {
    await start();
    const tab1 = await connect({ name: "alice" });
    const tab2 = await connect({ name: "alice", resume: resumeOf(tab1) });
    const bob = await connect({ name: "bob" });
    bob.send({ type: "private", to: "alice", text: "to both tabs" });
    for (const t of [tab1, tab2]) expect(await t.next("private")).toMatchObject({ from: "bob", text: "to both tabs", state: "delivered", box: 1 });
    tab1.send({ type: "private", to: "bob", text: "from tab one", ref: "p" });
    expect(await tab1.next("private", (m) => m.text === "from tab one")).toMatchObject({ ref: "p", box: 2 });
    expect(await tab2.next("private", (m) => m.text === "from tab one")).toMatchObject({ from: "alice", to: "bob", box: 2 });
    expect(await bob.next("private", (m) => m.text === "from tab one")).toMatchObject({ box: 2 });
    tab2.send("in the room");
    for (const c of [tab1, tab2, bob]) await c.next("message", (m) => m.text === "in the room");
  });

  test("leave and nick are the person's: every tab follows", async () => {
    await start();
    const bob = await connect({ name: "bob" });
    const tab1 = await connect({ name: "alice" });
    const tab2 = await connect({ name: "alice", resume: resumeOf(tab1) });
    await bob.next("presence", (p) => (p.joined as string[]).includes("alice"));
    tab1.send({ type: "leave", room: "lobby", ref: "l" });
    expect(await tab1.next("left")).toMatchObject({ room: "lobby", ref: "l" });
    const otherTab = await tab2.next("left");
    expect(otherTab).toMatchObject({ room: "lobby" });
    expect(otherTab.ref).toBeUndefined();
    expect(await bob.next("presence", (p) => (p.left as string[]).includes("alice"))).toMatchObject({ online: 1 });
    tab2.send({ type: "join", room: "lobby" });
    await tab2.next("joined");
    tab2.send({ type: "nick", name: "alicia", ref: "n" });
    expect(await bob.next("nick")).toMatchObject({ from: "alice", name: "alicia" });
    expect(await tab1.next("nick")).toMatchObject({ from: "alice", name: "alicia", room: "" });
  });

  test("MAX_CONNECTIONS_PER_USER caps one person's connections", async () => {
    const s = await start({ maxConnectionsPerUser: 2 });
    const tab1 = await connect({ name: "alice" });
    await connect({ name: "alice", resume: resumeOf(tab1) });
    const res = await handshake(`http://127.0.0.1:${s.port}`, `/ws?name=alice&resume=${resumeOf(tab1)}`);
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ error: "too_many_user_connections" });
  });

  test("another tab asking for a look-alike of the person's name joins under the person's name, not the variant", async () => {
    await start();
    const bob = await connect({ name: "bob" });
    const tab1 = await connect({ name: "alice" });
    // "AIice" (capital I) has alice's key: the resume key lets it in as alice's other tab.
    await bob.next("presence", (p) => (p.joined as string[]).includes("alice"));
    const tab2 = await connect({ name: "AIice", resume: resumeOf(tab1) });
    expect(welcomeOf(tab2).you).toMatchObject({ name: "alice", person: personOf(tab1) });
    tab2.send({ type: "chat", text: "from tab two" });
    expect(await bob.next("message", (m) => m.text === "from tab two")).toMatchObject({ from: "alice" });
    tab2.send({ type: "typing" });
    expect(await bob.next("typing")).toMatchObject({ from: "alice" });
    // Nor did the directory quietly rename the person: a message to them is still "to alice".
    tab1.close();
    tab2.close();
    await bob.next("presence", (p) => (p.left as string[]).includes("alice"));
    bob.send({ type: "private", to: "alice", text: "away", ref: "q" });
    expect(await bob.next("private", (m) => m.ref === "q")).toMatchObject({ to: "alice", state: "queued" });
  });

  test("with a token, its subject is the person on any number of devices", async () => {
    await start({ authSecret: SECRET });
    const token = await signToken(SECRET, { sub: "carol", exp: Math.floor(Date.now() / 1000) + 60 });
    const phone = await connect({ token });
    const laptop = await connect({ token });
    expect(personOf(phone)).toBe("t:carol");
    expect(personOf(laptop)).toBe("t:carol");
    expect(welcomeOf(phone).resume).toBeUndefined();
  });
});

describe("names held, then released", () => {
  test("a name stays held for the grace period, then a stranger is someone new who reads nothing of the old", async () => {
    const s = await start({ nameGrace: 1 });
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    alice.send({ type: "private", to: "bob", text: "secret for bob" });
    await bob.next("private");
    const bobPerson = personOf(bob);
    bob.close();
    await eventually(() => s.engine.registry.named(nameKey("bob")) === undefined, 5000, "bob gone");
    // Still held: a reload with the key gets it back, a stranger does not.
    expect((await handshake(`http://127.0.0.1:${s.port}`, "/ws?name=bob")).status).toBe(409);
    await Bun.sleep(1100);
    const mallory = await connect({ name: "bob" });
    expect(personOf(mallory)).not.toBe(bobPerson);
    mallory.send({ type: "history", with: "alice", ref: "h" });
    expect(await mallory.next("history")).toMatchObject({ messages: [], ref: "h" });
    await quietFor(mallory, "private", 100);
    // alice's conversation with "bob" is now with the new bob: empty.
    alice.send({ type: "history", with: "bob", ref: "a" });
    expect((await alice.next("history")).messages).toEqual([]);
  });

  test("the real bob comes back with his key after a stranger left the name: his history is his", async () => {
    const s = await start({ nameGrace: 1 });
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    const key = resumeOf(bob);
    alice.send({ type: "private", to: "bob", text: "remember me" });
    await bob.next("private");
    bob.close();
    await eventually(() => s.engine.registry.named(nameKey("bob")) === undefined, 5000, "bob gone");
    const back = await connect({ name: "bob", resume: key });
    expect(personOf(back)).toBe(personOf(bob));
    back.send({ type: "history", with: "alice" });
    expect(((await back.next("history")).messages as Frame[]).map((m) => m.text)).toEqual(["remember me"]);
  });
});

describe("messages for people who are away", () => {
  test("queued for a known person, told to the sender, delivered in order on their next connection", async () => {
    const s = await start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    const key = resumeOf(bob);
    bob.close();
    await eventually(() => s.engine.registry.named(nameKey("bob")) === undefined, 5000, "bob gone");
    for (const t of ["one", "two", "three"]) alice.send({ type: "private", to: "bob", text: t, ref: t });
    for (const t of ["one", "two", "three"]) expect(await alice.next("private", (m) => m.ref === t)).toMatchObject({ state: "queued" });
    const back = await connect({ name: "bob", resume: key });
    const got: Frame[] = [];
    for (let i = 0; i < 3; i++) got.push(await back.next("private"));
    expect(got.map((m) => m.text)).toEqual(["one", "two", "three"]);
    expect(got.map((m) => m.box)).toEqual([1, 2, 3]);
    expect(welcomeOf(back).inbox).toBe(3); // where this connection stands once they are out
    // Delivered once: another connection later does not get them again.
    back.close();
    const again = await connect({ name: "bob", resume: key });
    await quietFor(again, "private", 150);
    expect(welcomeOf(again).inbox).toBe(3);
  });

  test("a reconnect with ?inbox= gets exactly what it missed, while others got it live", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    const tab1 = await connect({ name: "bob" });
    const tab2 = await connect({ name: "bob", resume: resumeOf(tab1) });
    alice.send({ type: "private", to: "bob", text: "seen by both" });
    await tab2.next("private");
    tab2.close();
    alice.send({ type: "private", to: "bob", text: "while tab two was away" });
    await tab1.next("private", (m) => m.text === "while tab two was away");
    const tab2again = await connect({ name: "bob", resume: resumeOf(tab1), inbox: 1 });
    expect((await tab2again.next("private")).text).toBe("while tab two was away");
    await quietFor(tab2again, "private", 100);
  });

  test("an ?inbox= beyond the inbox's head is not trusted: replay starts at what the server knows was delivered, and new messages arrive", async () => {
    await start();
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    alice.send({ type: "private", to: "bob", text: "first" });
    await bob.next("private");
    const tab = await connect({ name: "bob", resume: resumeOf(bob), inbox: 999 });
    expect(welcomeOf(tab).inbox).toBe(1); // where the inbox really stands, not the client's guess
    // (A mark above the head means the store was lost or the mark is someone else's: the
    // inbox is replayed from the person's delivered mark, here its start.)
    expect(await tab.next("private")).toMatchObject({ text: "first", box: 1 });
    alice.send({ type: "private", to: "bob", text: "second" });
    expect(await tab.next("private")).toMatchObject({ text: "second", box: 2 });
  });

  test("unknown names are still no_such_user; a full inbox is inbox_full", async () => {
    const s = await start({ maxPendingPrivate: 2 });
    const alice = await connect({ name: "alice" });
    alice.send({ type: "private", to: "nobody", text: "hi", ref: 1 });
    expect(await alice.next("error")).toMatchObject({ code: "no_such_user", ref: 1 });
    const bob = await connect({ name: "bob" });
    bob.close();
    await eventually(() => s.engine.registry.named(nameKey("bob")) === undefined, 5000, "bob gone");
    for (let i = 0; i < 3; i++) alice.send({ type: "private", to: "bob", text: `m${i}`, ref: `q${i}` });
    expect(await alice.next("error", (e) => e.ref === "q2")).toMatchObject({ code: "inbox_full" });
    expect(alice.all("private").map((m) => m.text)).toEqual(["m0", "m1"]);
  });

  test("with history off nothing can wait: the sender is told the recipient is away", async () => {
    const s = await start({ historyDb: "off" });
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    bob.close();
    await eventually(() => s.engine.registry.named(nameKey("bob")) === undefined, 5000, "bob gone");
    alice.send({ type: "private", to: "bob", text: "hello?", ref: "x" });
    expect(await alice.next("error")).toMatchObject({ code: "recipient_away", ref: "x" });
  });

  test("people and their waiting messages survive a restart on the same history file", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "bunchat-people-"));
    try {
      const db = join(dir, "chat.db");
      let s = await start({ historyDb: db });
      const alice = await connect({ name: "alice" });
      const bob = await connect({ name: "bob" });
      const key = resumeOf(bob);
      bob.close();
      await eventually(() => s.engine.registry.named(nameKey("bob")) === undefined, 5000, "bob gone");
      alice.send({ type: "private", to: "bob", text: "across a restart", ref: "r" });
      expect(await alice.next("private")).toMatchObject({ state: "queued" });
      for (const c of clients.splice(0)) c.close();
      await s.stop();
      s = await start({ historyDb: db });
      expect((await handshake(`http://127.0.0.1:${s.port}`, "/ws?name=bob")).status).toBe(409);
      const back = await connect({ name: "bob", resume: key });
      expect(await back.next("private")).toMatchObject({ text: "across a restart", from: "alice" });
      expect(personOf(back)).toBe(personOf(bob));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("people's records expire after their retention", () => {
  test("on SQLite, however many connected people come first, the others' records expire", () => {
    const store = new SqliteStore({ path: ":memory:", limit: 1000, maxAgeSeconds: 0 });
    const identities = new SqliteIdentities(store.db!);
    const record = (id: string) => ({ id, name: id, key: id, resume: null, seen: 1, delivered: 0 });
    // 600 people still connected (long ago seen) sort before the one who is gone.
    for (let i = 0; i < 600; i++) identities.put(record(`a${String(i).padStart(4, "0")}`));
    identities.put(record("zgone"));
    expect(identities.expire(1000, (id) => id !== "zgone")).toBe(1);
    expect(identities.get("zgone")).toBeUndefined();
    expect(identities.get("a0000")).toBeDefined();
    store.close();
  });
});

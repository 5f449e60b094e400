// Durable history on real SQLite files: ids, restarts, gap-free replay, paging,
// retention, modes, a kill -9 crash, the HTTP API and a full disk.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { SCHEMA_VERSION, SqliteStore } from "../src/broker/sqlite.ts";
import type { Stored } from "../src/broker/store.ts";
import { eventually, TestClient, type Frame } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";
import { spawnServer } from "./helpers/spawn-server.ts";

const fixture = serverFixture({ presenceWindow: 20, rateLimit: 0 });
const { start } = fixture;
const connect = fixture.connectTo;
const dirs: string[] = [];

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), "bunchat-history-"));
  dirs.push(dir);
  return join(dir, "nested", "chat.db");
}

async function say(c: TestClient, texts: string[], room?: string): Promise<Frame[]> {
  for (const text of texts) c.send({ type: "chat", text, ...(room ? { room } : {}) });
  const got: Frame[] = [];
  for (const text of texts) got.push(await c.next("message", (m) => m.text === text));
  return got;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Store room messages in one group commit; their ids. */
async function storeAll(store: SqliteStore, room: string, texts: string[], ts = Date.now()): Promise<number[]> {
  const done = texts.map((text) => new Promise<number>((resolve, reject) => {
    store.append({ kind: "room", room, from: "alice", text, ts }, room, (r) => (typeof r === "object" ? resolve((r as Stored).item.id) : reject(new Error(r))));
  }));
  store.flush();
  return Promise.all(done);
}

describe("ids never repeat, whatever was deleted", () => {
  // A conversation's last id is its newest row's; what deletes newest rows keeps the id first.
  test("every message of a room aged out: after a restart the next id is above the last", async () => {
    const db = tempDb();
    let store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0 });
    expect(await storeAll(store, "lobby", ["a", "b", "c"], Date.now() - 7_200_000)).toEqual([1, 2, 3]);
    store.close();
    store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 3600 }); // trims at start
    expect((await store.after("lobby", 0, 10)).messages).toHaveLength(0);
    store.close();
    store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0 });
    expect(store.lastId("lobby")).toBe(3);
    expect(await storeAll(store, "lobby", ["d"])).toEqual([4]);
    store.close();
  });

  test("a moderator deleting the newest message: its id is not given again after a restart", async () => {
    const db = tempDb();
    let store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0 });
    await storeAll(store, "lobby", ["a", "b"]);
    expect(await store.delete("lobby", 2)).toBe(true);
    expect(await store.delete("lobby", 1)).toBe(true);
    store.close();
    store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0 });
    expect(await storeAll(store, "lobby", ["c"])).toEqual([3]);
    store.close();
  });

  test("HISTORY_LIMIT trims the oldest: after a restart ids continue from the newest", async () => {
    const db = tempDb();
    let store = new SqliteStore({ path: db, limit: 2, maxAgeSeconds: 0 });
    await storeAll(store, "lobby", ["a", "b", "c", "d", "e"]);
    store.close();
    store = new SqliteStore({ path: db, limit: 2, maxAgeSeconds: 0 });
    expect((await store.after("lobby", 0, 10)).messages.map((m) => m.id)).toEqual([4, 5]);
    expect(await storeAll(store, "lobby", ["f"])).toEqual([6]);
    store.close();
  });

  test("a file written without a last id per conversation is refused by a bunchat that needs one (schema 5)", async () => {
    const db = tempDb();
    const store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0 });
    await storeAll(store, "lobby", ["a"]);
    store.close();
    // Schema 5 took a conversation's last id from `conversations` alone: here it would
    // number from 1 again, and every commit would fail on a duplicate key. Its migrate()
    // refuses a file of a higher version.
    const raw = new Database(db);
    expect(raw.query<{ n: number }, []>("SELECT count(*) AS n FROM conversations").get()!.n).toBe(0);
    expect(raw.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBeGreaterThan(5);
    raw.close();
  });

  test("a file written by a bunchat that kept every last id still counts from them", async () => {
    const db = tempDb();
    let store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0 });
    await storeAll(store, "lobby", ["a"]);
    store.close();
    const raw = new Database(db);
    raw.run("INSERT INTO conversations (conv, last_id) VALUES ('lobby', 7) ON CONFLICT (conv) DO UPDATE SET last_id = 7");
    raw.close();
    store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0 });
    expect(await storeAll(store, "lobby", ["b"])).toEqual([8]);
    store.close();
  });
});

describe("the write-ahead log", () => {
  test("is copied into the file by the background checkpoint (the writer's own waits for 10,000 pages)", async () => {
    const db = tempDb();
    const copied: number[] = [];
    const store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0, onCheckpoint: (pages) => copied.push(pages) });
    for (let batch = 0; batch < 20; batch++) await storeAll(store, `room${batch}`, Array.from({ length: 50 }, (_, i) => `message ${i}`));
    await eventually(() => copied.some((pages) => pages > 0), 5000);
    expect((await store.after("room19", 0, 100)).messages).toHaveLength(50);
    store.close();
  });

  test("close while the background checkpoint is copying: the file is complete without its log", async () => {
    const db = tempDb();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const store = new SqliteStore({ path: db, limit: 0, maxAgeSeconds: 0, onCheckpoint: () => started() });
    await storeAll(store, "lobby", ["first"]);
    await running; // the worker has its connection
    const texts = Array.from({ length: 40_000 }, (_, i) => `${i} ${"x".repeat(500)}`);
    await storeAll(store, "lobby", texts);
    // The worker's next checkpoint copies ~25 MB: close once the file starts growing.
    const before = statSync(db).size;
    const deadline = Date.now() + 5000;
    while (statSync(db).size === before && Date.now() < deadline) Bun.sleepSync(1);
    store.close();
    expect(existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0).toBe(0);
    const copy = join(dirname(db), "copy.db");
    copyFileSync(db, copy); // the file alone, as a backup after a clean stop takes it
    const alone = new Database(copy);
    expect(alone.query<{ n: number }, []>("SELECT count(*) AS n FROM messages").get()!.n).toBe(40_001);
    alone.close();
  }, 30_000);
});

describe("ids and persistence", () => {
  test("ids increase per room, independently", async () => {
    const s = await start({ historyDb: tempDb() });
    const alice = await connect(s, { name: "alice" });
    alice.send({ type: "join", room: "dev" });
    await alice.next("joined");
    const lobby = await say(alice, ["l1", "l2"], "lobby");
    const dev = await say(alice, ["d1"], "dev");
    expect(lobby.map((m) => m.id)).toEqual([1, 2]);
    expect(dev.map((m) => m.id)).toEqual([1]);
  });

  test("history survives a restart on the same file; welcome carries the tail", async () => {
    const db = tempDb();
    let s = await start({ historyDb: db, historyOnJoin: 2 });
    const alice = await connect(s, { name: "alice" });
    await say(alice, ["a", "b", "c"]);
    await s.stop();
    s = await start({ historyDb: db, historyOnJoin: 2 });
    const bob = await connect(s, { name: "bob" });
    const welcome = bob.frames[0]!;
    expect((welcome.history as Frame[]).map((m) => [m.id, m.text])).toEqual([[2, "b"], [3, "c"]]);
    const [next] = await say(bob, ["d"]);
    expect(next!.id).toBe(4);
  });

  test("the schema is versioned", async () => {
    const db = tempDb();
    const s = await start({ historyDb: db });
    await s.stop();
    const raw = new Database(db, { readonly: true });
    expect(raw.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(SCHEMA_VERSION);
    raw.close();
  });
});

describe("replay", () => {
  test("?since= replays exactly what was missed, then live messages continue", async () => {
    const s = await start({ historyDb: tempDb() });
    const alice = await connect(s, { name: "alice" });
    const sent = await say(alice, ["1", "2", "3", "4", "5"]);
    const bob = await connect(s, { name: "bob", since: sent[1]!.id as number });
    expect((bob.frames[0]!.history as Frame[]).map((m) => m.text)).toEqual(["3", "4", "5"]);
    alice.send("6");
    expect(await bob.next("message")).toMatchObject({ text: "6", id: 6 });
  });

  test("replay has no gaps and no duplicates while messages keep arriving", async () => {
    const s = await start({ historyDb: tempDb() });
    const alice = await connect(s, { name: "alice" });
    await say(alice, ["seed"]);
    let n = 0;
    const pump = setInterval(() => {
      for (let i = 0; i < 5; i++) alice.send(`live ${n++}`);
    }, 2);
    const readers: TestClient[] = [];
    for (let r = 0; r < 5; r++) {
      await Bun.sleep(15);
      readers.push(await connect(s, { name: `reader${r}`, since: 1 }));
    }
    await Bun.sleep(50);
    clearInterval(pump);
    const last = n + 1; // seed is id 1, live messages 2..n+1
    for (const reader of readers) {
      await reader.next("message", (m) => m.id === last);
      const replayed = (reader.frames[0]!.history as Frame[]).map((m) => m.id as number);
      const live = reader.all("message").map((m) => m.id as number);
      const ids = [...replayed, ...live];
      expect(ids).toEqual(Array.from({ length: last - 1 }, (_, i) => i + 2));
    }
  });

  test("join {room, since} replays a room; history pages backwards", async () => {
    const s = await start({ historyDb: tempDb() });
    const alice = await connect(s, { name: "alice" });
    await say(alice, Array.from({ length: 12 }, (_, i) => `m${i + 1}`));
    const bob = await connect(s, { name: "bob", room: "other" });
    bob.send({ type: "join", room: "lobby", since: 9 });
    expect(((await bob.next("joined")).history as Frame[]).map((m) => m.id)).toEqual([10, 11, 12]);
    bob.send({ type: "history", room: "lobby", limit: 5, ref: "h1" });
    const page1 = await bob.next("history");
    expect(page1).toMatchObject({ room: "lobby", more: true, ref: "h1" });
    expect((page1.messages as Frame[]).map((m) => m.id)).toEqual([8, 9, 10, 11, 12]);
    bob.send({ type: "history", room: "lobby", before: 8, limit: 10 });
    const page2 = await bob.next("history");
    expect((page2.messages as Frame[]).map((m) => m.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(page2.more).toBe(false);
  });

  test("private history: each user reads their own conversations, no one else's", async () => {
    const s = await start({ historyDb: tempDb() });
    const alice = await connect(s, { name: "alice" });
    const bob = await connect(s, { name: "bob" });
    const carol = await connect(s, { name: "carol" });
    alice.send({ type: "private", to: "bob", text: "secret 1" });
    await bob.next("private");
    bob.send({ type: "private", to: "alice", text: "secret 2" });
    await alice.next("private", (p) => p.text === "secret 2");
    bob.send({ type: "history", with: "alice" });
    const own = await bob.next("history");
    expect((own.messages as Frame[]).map((m) => [m.id, m.from, m.text])).toEqual([[1, "alice", "secret 1"], [2, "bob", "secret 2"]]);
    // carol can only name conversations she is part of: asking "with bob" is carol↔bob.
    carol.send({ type: "history", with: "bob" });
    expect((await carol.next("history")).messages).toEqual([]);
    carol.send({ type: "history", with: "alice" });
    expect((await carol.next("history")).messages).toEqual([]);
  });
});

describe("retention and modes", () => {
  test("HISTORY_LIMIT keeps the newest messages per room; ids keep counting", async () => {
    const db = tempDb();
    const s = await start({ historyDb: db, historyLimit: 3 });
    const alice = await connect(s, { name: "alice" });
    await say(alice, ["1", "2", "3", "4", "5"]);
    const res = await fetch(`http://127.0.0.1:${s.port}/api/rooms/lobby/messages?limit=100`);
    const body = (await res.json()) as { messages: Frame[] };
    expect(body.messages.map((m) => m.id)).toEqual([3, 4, 5]);
  });

  test("HISTORY_MAX_AGE drops old messages", async () => {
    const db = tempDb();
    // Put an old message in the file, then start with a one-hour age limit.
    let s = await start({ historyDb: db });
    const alice = await connect(s, { name: "alice" });
    await say(alice, ["old", "new"]);
    await s.stop();
    const raw = new Database(db);
    raw.run("UPDATE messages SET ts = ts - 7200000 WHERE text = 'old'");
    raw.close();
    s = await start({ historyDb: db, historyMaxAge: 3600 });
    const res = await fetch(`http://127.0.0.1:${s.port}/api/rooms/lobby/messages`);
    expect(((await res.json()) as { messages: Frame[] }).messages.map((m) => m.text)).toEqual(["new"]);
  });

  test(":memory: keeps history for the life of the process", async () => {
    const s = await start({ historyDb: ":memory:" });
    const alice = await connect(s, { name: "alice" });
    await say(alice, ["kept"]);
    const bob = await connect(s, { name: "bob" });
    expect((bob.frames[0]!.history as Frame[]).map((m) => m.text)).toEqual(["kept"]);
  });

  test("off keeps nothing but still numbers messages", async () => {
    const s = await start({ historyDb: "off" });
    const alice = await connect(s, { name: "alice" });
    const sent = await say(alice, ["a", "b"]);
    expect(sent.map((m) => m.id)).toEqual([1, 2]);
    const bob = await connect(s, { name: "bob" });
    expect(bob.frames[0]!.history).toEqual([]);
    bob.send({ type: "history", ref: 1 });
    expect(await bob.next("error")).toMatchObject({ code: "history_off" });
    expect((await fetch(`http://127.0.0.1:${s.port}/api/rooms/lobby/messages`)).status).toBe(404);
  });

  test("a path that cannot be opened stops the start with one clear line", async () => {
    const proc = Bun.spawn(["bun", "run", "src/server.ts", "--port", "0", "--history-db", "/proc/nope/chat.db"], { stdout: "pipe", stderr: "pipe" });
    const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(2);
    expect(err.trim().split("\n")).toHaveLength(1);
    expect(err).toContain('--history-db "/proc/nope/chat.db"');
  });
});

describe("failures", () => {
  test("a full disk answers store_unavailable and delivers nothing; the server keeps running", async () => {
    const s = await start({ historyDb: tempDb() });
    const alice = await connect(s, { name: "alice" });
    const bob = await connect(s, { name: "bob" });
    await say(alice, ["before"]);
    const db = ((s.broker as unknown as { store: { db: Database } }).store).db;
    // SQLITE_FULL, exactly as a full disk reports it: cap the file at its current size.
    const pages = db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    db.run(`PRAGMA max_page_count = ${pages}`);
    const big = "z".repeat(3000);
    for (let i = 0; i < 5; i++) alice.send({ type: "chat", text: `${big}${i}`, ref: `f${i}` });
    const error = await alice.next("error", (e) => e.code === "store_unavailable");
    expect(String(error.ref)).toMatch(/^f/);
    await Bun.sleep(100);
    expect(bob.all("message").filter((m) => String(m.text).startsWith("zzz"))).toHaveLength(0);
    expect(s.metrics.storeErrors.value).toBeGreaterThan(0);
    db.run("PRAGMA max_page_count = 1073741823");
    const [after] = await say(alice, ["after"]);
    expect(after!.id).toBe(2); // failed batches consume no ids
    expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
  });

  test("kill -9 right after clients saw messages loses none of them", async () => {
    const db = tempDb();
    const start = () => spawnServer(["bun", "run", "src/server.ts", "--host", "127.0.0.1", "--port", "0", "--history-db", db, "--rate-limit", "0"]);
    const first = await start();
    const seen: Frame[] = [];
    const ws = `ws://127.0.0.1:${first.port}/ws`;
    const writer = await TestClient.connect(ws, { name: "writer" });
    const watcher = await TestClient.connect(ws, { name: "watcher" });
    for (let i = 0; i < 300; i++) writer.send(`crash ${i}`);
    // Kill the moment the watcher has seen 150: the rest may be in flight.
    await eventually(() => watcher.all("message").length >= 150, 10_000, "150 seen");
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    seen.push(...watcher.all("message"), ...writer.all("message"));
    writer.close();
    watcher.close();
    const second = await start();
    try {
      const res = await fetch(`http://127.0.0.1:${second.port}/api/rooms/lobby/messages?since=0&limit=1000`);
      const stored = ((await res.json()) as { messages: Frame[] }).messages;
      const storedIds = new Map(stored.map((m) => [m.id, m.text]));
      expect(seen.length).toBeGreaterThanOrEqual(150);
      for (const m of seen) expect(storedIds.get(m.id)).toBe(m.text);
    } finally {
      second.proc.kill("SIGKILL");
    }
  });
});

describe("HTTP history API", () => {
  test("since, before and limit; bad parameters get 400 with a reason", async () => {
    const s = await start({ historyDb: tempDb() });
    const alice = await connect(s, { name: "alice" });
    await say(alice, ["1", "2", "3", "4"]);
    const base = `http://127.0.0.1:${s.port}/api/rooms/lobby/messages`;
    const get = async (q: string) => {
      const res = await fetch(`${base}${q}`);
      return { status: res.status, body: (await res.json()) as { messages?: Frame[]; more?: boolean; error?: string } };
    };
    expect((await get("?since=2")).body.messages!.map((m) => m.id)).toEqual([3, 4]);
    expect((await get("?before=3&limit=1")).body).toMatchObject({ more: true });
    expect((await get("?before=3&limit=1")).body.messages!.map((m) => m.id)).toEqual([2]);
    expect((await get("")).body.messages!.map((m) => m.text)).toEqual(["1", "2", "3", "4"]);
    for (const [q, error] of [["?since=x", "bad_since"], ["?before=-1", "bad_before"], ["?limit=0", "bad_limit"], ["?limit=5000", "bad_limit"], ["?since=1&before=3", "bad_query"]]) {
      const r = await get(q!);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe(error);
    }
    const badRoom = await fetch(`http://127.0.0.1:${s.port}/api/rooms/${encodeURIComponent("no room!")}/messages`);
    expect(badRoom.status).toBe(400);
  });

  test("metrics count stored messages and group commits", async () => {
    const s = await start({ historyDb: tempDb() });
    const alice = await connect(s, { name: "alice" });
    for (let i = 0; i < 50; i++) alice.send(`burst ${i}`);
    await eventually(() => alice.all("message").length === 50, 5000, "50 echoes");
    expect(s.metrics.stored.value).toBe(50);
    // 50 frames sent back to back arrive in a few event-loop turns, not 50 transactions.
    expect(s.metrics.batchSize.count).toBeLessThan(50);
    const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    expect(text).toMatch(/^bunchat_history_messages_stored_total 50$/m);
    expect(text).toContain("bunchat_history_commit_seconds_bucket");
  });
});

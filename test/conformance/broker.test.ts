// One contract, every broker: the in-process broker with SQLite history, the in-process
// broker with history off, and the Redis broker on a real redis-server are each held to
// the same suite (as socket.io-redis-adapter runs one suite over every adapter): ids and
// order, no duplicates, reference-counted subscriptions, delivered marks, history pages,
// epochs, and what a failing backend answers.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { RedisClient } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalBroker } from "../../src/broker/local.ts";
import { SqliteStore } from "../../src/broker/sqlite.ts";
import { VolatileStore } from "../../src/broker/volatile.ts";
import type { Broker, PendingMessage } from "../../src/engine/ports.ts";
import { BrokerUnavailable } from "../../src/engine/ports.ts";
import { inboxConversation, topics } from "../../src/engine/topics.ts";
import { createLogger } from "../../src/obs/log.ts";
import { EPOCH } from "../../src/protocol/decode.ts";
import { RedisBroker } from "../../src/redis/broker.ts";
import { RedisConnection } from "../../src/redis/connection.ts";
import { eventually } from "../helpers/client.ts";
import { RedisServer } from "../helpers/redis.ts";
import { redisAvailable } from "../helpers/tools.ts";

// Without redis-server (and outside CI) the Redis broker's run is skipped, said once by tools.ts.
const REDIS = await redisAvailable();

interface Delivery {
  topic: string;
  seq: number;
  frame: { type: string; id?: number; text?: string; box?: number };
}

interface Subject {
  broker: Broker;
  /** Make the backend fail (disk full, Redis gone); `repair` undoes it. */
  breakBackend?(): Promise<void>;
  repair?(): Promise<void>;
  /** Lose every stored message while the broker keeps running (Redis restart, FLUSHALL). */
  loseHistory?(): Promise<void>;
  /** Drop the broker's pub/sub connection (Redis CLIENT KILL TYPE pubsub). */
  killSubscriber?(): Promise<void>;
  /**
   * Make people reachable on this node. Redis routes an inbox to the nodes where the
   * person is connected, which the Directory records at admission; here there is none.
   */
  connectPeople?(ids: string[]): Promise<void>;
  /** A second broker on the same backend: another node. */
  another?(): Promise<Broker>;
  close(): Promise<void>;
}

interface Implementation {
  name: string;
  /** Keeps messages (history off only numbers them). */
  history: boolean;
  /** Can be made to fail, can lose its history while running, has a pub/sub connection. */
  failures: boolean;
  losesHistory: boolean;
  reconnects: boolean;
  make(): Promise<Subject>;
}

const log = createLogger("silent");
const dirs: string[] = [];
let redis: RedisServer | null = null;

const ALL_IMPLEMENTATIONS: Implementation[] = [
  {
    name: "in-process, SQLite history",
    history: true,
    failures: true,
    // SQLite holds its file open: history is lost only between runs (a new file = a new epoch).
    losesHistory: false,
    reconnects: false,
    async make() {
      const dir = mkdtempSync(join(tmpdir(), "bunchat-conformance-"));
      dirs.push(dir);
      const store = new SqliteStore({ path: join(dir, "chat.db"), limit: 1000, maxAgeSeconds: 0 });
      const broker = new LocalBroker(store);
      const db = (store as unknown as { db: Database }).db;
      return {
        broker,
        async breakBackend() {
          // SQLITE_FULL, exactly as a full disk reports it.
          const pages = db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
          db.run(`PRAGMA max_page_count = ${pages}`);
        },
        async repair() {
          db.run("PRAGMA max_page_count = 1073741823");
        },
        close: () => broker.close(),
      };
    },
  },
  {
    name: "in-process, history off",
    history: false,
    failures: false,
    losesHistory: false,
    reconnects: false,
    async make() {
      const broker = new LocalBroker(new VolatileStore());
      return { broker, close: () => broker.close() };
    },
  },
  {
    name: "Redis",
    history: true,
    failures: true,
    losesHistory: true,
    reconnects: true,
    async make() {
      redis ??= await RedisServer.start();
      const server = redis;
      const opened: { broker: RedisBroker; commands: RedisConnection }[] = [];
      const open = async () => {
        const commands = new RedisConnection(server.url, { onUp: () => void opened.find((o) => o.commands === commands)?.broker.reconnected().catch(() => {}) });
        await commands.connect();
        const broker = new RedisBroker(commands, server.url, { nodeId: `node${opened.length}`, limit: 1000, log });
        await broker.start();
        opened.push({ broker, commands });
        return broker;
      };
      const admin = new RedisClient(server.url);
      await admin.connect();
      const broker = await open();
      return {
        broker,
        async breakBackend() {
          await server.stop();
          await eventually(() => !opened[0]!.commands.up, 5000, "the broker sees Redis down");
        },
        async repair() {
          await server.boot();
          await eventually(() => opened.every((o) => o.commands.up && o.broker.subscriber.up), 10_000, "the broker reconnected");
        },
        async loseHistory() {
          await admin.send("FLUSHALL", []);
        },
        async connectPeople(ids) {
          for (const id of ids) await admin.send("HSET", [`bc:conns:${id}`, "node0", "1"]);
        },
        async killSubscriber() {
          await admin.send("CLIENT", ["KILL", "TYPE", "pubsub"]);
        },
        another: open,
        async close() {
          for (const o of opened) {
            await o.broker.close();
            o.commands.close();
          }
          admin.close();
          await server.restart(0);
        },
      };
    },
  },
];

const IMPLEMENTATIONS = ALL_IMPLEMENTATIONS.filter((impl) => REDIS || impl.name !== "Redis");

afterAll(async () => {
  await redis?.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const room = (name: string, text: string, ref?: string): PendingMessage => ({ kind: "room", room: name, from: "alice", text, ts: Date.now(), ...(ref ? { ref } : {}) });
const dm = (fromId: string, toId: string, text: string): PendingMessage => ({ kind: "private", from: fromId, to: toId, fromId, toId, text, ts: Date.now(), state: "delivered" });

function record(broker: Broker): Delivery[] {
  const got: Delivery[] = [];
  broker.onDeliver((topic, frame, seq) => got.push({ topic, seq, frame: JSON.parse(frame) }));
  return got;
}

describe.each(IMPLEMENTATIONS)("broker contract: $name", (impl) => {
  let subject: Subject;
  let broker: Broker;
  afterEach(async () => {
    await subject?.close();
  });
  const make = async () => {
    subject = await impl.make();
    broker = subject.broker;
    return broker;
  };

  test("ids increase by one per conversation, independently", async () => {
    await make();
    const a = await Promise.all(["1", "2", "3"].map((t) => broker.publish(room("a", t))));
    const b = await Promise.all(["1", "2"].map((t) => broker.publish(room("b", t))));
    const p = await broker.publish(dm("x", "y", "hi"));
    expect(a.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(b.map((m) => m.id)).toEqual([1, 2]);
    expect(p).toMatchObject({ type: "private", id: 1, from: "x", to: "y", text: "hi" });
  });

  test("a subscriber gets every frame once, in id order, with the id as seq; the ref travels", async () => {
    await make();
    const got = record(broker);
    await broker.subscribe(topics.room("r"));
    const sent = await Promise.all(Array.from({ length: 50 }, (_, i) => broker.publish(room("r", `m${i}`, `ref${i}`))));
    await eventually(() => got.length === 50, 5000, "50 deliveries");
    expect(got.map((d) => d.seq)).toEqual(sent.map((m) => m.id));
    expect(got.map((d) => d.frame.id)).toEqual(sent.map((m) => m.id));
    expect(got[0]!.frame).toMatchObject({ type: "message", room: "r", text: "m0", ref: "ref0" });
    expect(broker.delivered(topics.room("r"))).toBe(50);
  });

  test("nothing is delivered for topics nobody subscribed to", async () => {
    await make();
    const got = record(broker);
    await broker.subscribe(topics.room("heard"));
    await broker.publish(room("unheard", "x"));
    await broker.publish(room("heard", "y"));
    await eventually(() => got.length === 1, 5000, "one delivery");
    await Bun.sleep(50);
    expect(got.map((d) => d.topic)).toEqual([topics.room("heard")]);
  });

  test("subscriptions are reference counted, and unsubscribing what is not subscribed is harmless", async () => {
    await make();
    const got = record(broker);
    const t = topics.room("counted");
    expect(() => broker.unsubscribe(t)).not.toThrow();
    await broker.subscribe(t);
    await broker.subscribe(t);
    broker.unsubscribe(t);
    await broker.publish(room("counted", "still"));
    await eventually(() => got.length === 1, 5000, "delivery with one reference left");
    broker.unsubscribe(t);
    broker.unsubscribe(t);
    await broker.publish(room("counted", "gone"));
    await Bun.sleep(100);
    expect(got.map((d) => d.frame.text)).toEqual(["still"]);
    // Off and on again within one turn ends subscribed.
    const again = broker.subscribe(t);
    broker.unsubscribe(t);
    const last = broker.subscribe(t);
    await Promise.allSettled([again, last]);
    await broker.publish(room("counted", "back"));
    await eventually(() => got.length === 2, 5000, "delivery after resubscribing");
    expect(got.at(-1)!.frame.text).toBe("back");
  });

  test("after subscribe, delivered() is the newest id; deliveredUpTo waits for the stream", async () => {
    await make();
    record(broker);
    for (let i = 0; i < 3; i++) await broker.publish(room("marks", `m${i}`));
    const t = topics.room("marks");
    await broker.subscribe(t);
    expect(broker.delivered(t)).toBe(3);
    const reached = broker.deliveredUpTo(t, 4, 5000);
    await broker.publish(room("marks", "m3"));
    expect(await reached).toBe(true);
    expect(await broker.deliveredUpTo(t, 99, 30)).toBe(false);
    expect(broker.delivered(topics.room("never"))).toBe(0);
  });

  test("an inbox subscribed after frames reached this node: delivered says so, so they are read from the store", async () => {
    // The window between a person's admission here (Redis routes their inbox frames to this
    // node from then on) and their connection's subscribe: what arrived meanwhile was not
    // delivered, and the engine must read it (it skips the read when nothing is newer).
    await make();
    await subject.connectPeople?.(["q1", "q2"]);
    await broker.publish(dm("q2", "q1", "before the subscribe"));
    await broker.publish(dm("q2", "q1", "still before"));
    // Time for a routed frame to reach this node (Redis), where no one listens yet.
    await Bun.sleep(100);
    await broker.subscribe(topics.inbox("q1"));
    expect(broker.delivered(topics.inbox("q1"))).toBe(2);
  });

  test("a private message reaches both inboxes (once when it is to oneself)", async () => {
    await make();
    const got = record(broker);
    await subject.connectPeople?.(["x", "y", "z"]);
    for (const key of ["x", "y", "z"]) await broker.subscribe(topics.inbox(key));
    await broker.publish(dm("x", "y", "psst"));
    await broker.publish(dm("z", "z", "note to self"));
    await eventually(() => got.length === 3, 5000, "three deliveries");
    await Bun.sleep(50);
    expect(got.map((d) => d.topic).sort()).toEqual([topics.inbox("x"), topics.inbox("y"), topics.inbox("z")]);
    // Each inbox numbers what it holds: the seq is the message's position there.
    expect(got.map((d) => [d.topic, d.seq, d.frame.box])).toEqual(expect.arrayContaining([[topics.inbox("x"), 1, 1], [topics.inbox("y"), 1, 1], [topics.inbox("z"), 1, 1]]));
    expect(got.every((d) => d.frame.id === 1)).toBe(true);
  });

  test("broadcast frames reach subscribers unnumbered and are not stored", async () => {
    await make();
    const got = record(broker);
    await broker.subscribe(topics.room("b"));
    broker.broadcast(topics.room("b"), JSON.stringify({ type: "typing", room: "b", from: "alice" }));
    await eventually(() => got.length === 1, 5000, "broadcast delivered");
    expect(got[0]).toMatchObject({ seq: 0, frame: { type: "typing" } });
    expect((await broker.after("b", 0, 10)).messages).toEqual([]);
  });

  test("the epoch is a short token that stays put", async () => {
    await make();
    const epoch = broker.epoch();
    expect(epoch).toMatch(EPOCH);
    await broker.publish(room("e", "x"));
    expect(broker.epoch()).toBe(epoch);
  });

  test.if(impl.history)("history pages forwards and backwards, with more", async () => {
      await make();
      for (let i = 1; i <= 7; i++) await broker.publish(room("h", `m${i}`));
    const first = await broker.after("h", 0, 3);
      expect(first.messages.map((m) => m.id)).toEqual([1, 2, 3]);
      expect(first.more).toBe(true);
      const rest = await broker.after("h", 3, 10);
      expect(rest.messages.map((m) => m.id)).toEqual([4, 5, 6, 7]);
      expect(rest.more).toBe(false);
      const tail = await broker.before("h", undefined, 2);
      expect(tail.messages.map((m) => m.id)).toEqual([6, 7]);
      expect(tail.more).toBe(true);
      const older = await broker.before("h", 3, 5);
      expect(older.messages.map((m) => m.id)).toEqual([1, 2]);
      expect(older.more).toBe(false);
  });

  test("nothing comes before id 1: an empty page, not an error", async () => {
    await make();
    await broker.publish(room("edge", "one"));
    for (const beforeId of [0, 1]) expect(await broker.before("edge", beforeId, 10)).toEqual({ messages: [], more: false });
  });

  test.if(impl.losesHistory)("a node that learns late of the loss still delivers what the new epoch holds", async () => {
    await make();
    const late = broker; // saw ids up to 20 in room x
    const early = await subject.another!(); // saw ids up to 3 in room y only
    const got = record(late);
    await late.subscribe(topics.room("x"));
    for (let i = 0; i < 20; i++) await late.publish(room("x", `old${i}`));
    await early.subscribe(topics.room("y"));
    for (let i = 0; i < 3; i++) await early.publish(room("y", `y${i}`));
    await eventually(() => got.length === 20, 5000, "the old messages at the late node");
    await subject.loseHistory!();
    // The early node starts the new epoch (its floor: 3) and speaks in x first…
    await early.subscribe(topics.room("x"));
    const early1 = await early.publish(room("x", "new1"));
    const early2 = await early.publish(room("x", "new2"));
    expect(early1.id).toBeGreaterThan(3);
    // …then the late node publishes, learns of the loss, raises the floor to what it saw.
    const own = await late.publish(room("x", "mine"));
    expect(own.id).toBeGreaterThan(20);
    const after = await early.publish(room("x", "new3"));
    expect(after.id).toBeGreaterThan(own.id);
    await eventually(() => ["new1", "new2", "mine", "new3"].every((t) => got.some((d) => d.frame.text === t)), 5000, "the new epoch's messages at the late node");
    expect(early2.id).toBe(early1.id + 1);
  });

  test.if(impl.history)("delete removes one room message from the history; ids are never reused", async () => {
    await make();
    for (const t of ["one", "two", "three"]) await broker.publish(room("d", t));
    await broker.publish(dm("x", "y", "private two"));
    expect(await broker.delete("d", 2)).toBe(true);
    expect(await broker.delete("d", 2)).toBe(false);
    expect(await broker.delete("d", 99)).toBe(false);
    expect(await broker.delete("elsewhere", 1)).toBe(false);
    expect((await broker.before("d", undefined, 10)).messages.map((m) => m.text)).toEqual(["one", "three"]);
    expect((await broker.after("d", 0, 10)).messages.map((m) => m.id)).toEqual([1, 3]);
    expect((await broker.publish(room("d", "four"))).id).toBe(4);
  });

  test.if(!impl.history)("delete with history off removes nothing", async () => {
    await make();
    await broker.publish(room("d", "one"));
    expect(await broker.delete("d", 1)).toBe(false);
  });

  test("a bot's messages say so, live and in the history; a bot has no inbox of its own", async () => {
    await make();
    const got = record(broker);
    await broker.subscribe(topics.room("b"));
    await subject.connectPeople?.(["bot:news", "p1"]);
    await broker.subscribe(topics.inbox("bot:news"));
    await broker.subscribe(topics.inbox("p1"));
    const item = await broker.publish({ kind: "room", room: "b", from: "news", text: "hello", ts: 1, bot: true });
    expect(item).toMatchObject({ type: "message", id: 1, from: "news", bot: true });
    await broker.publish({ kind: "private", from: "news", to: "ann", fromId: "bot:news", toId: "p1", text: "psst", ts: 2, state: "delivered", bot: true });
    await eventually(() => got.length === 2, 5000, "two deliveries");
    expect(got.map((d) => [d.topic, d.frame.type, (d.frame as { bot?: boolean }).bot])).toEqual([[topics.room("b"), "message", true], [topics.inbox("p1"), "private", true]]);
    if (impl.history) {
      expect((await broker.before("b", undefined, 5)).messages[0]).toMatchObject({ text: "hello", bot: true });
      expect((await broker.after(inboxConversation("p1"), 0, 5)).messages[0]).toMatchObject({ text: "psst", bot: true, box: 1 });
      expect((await broker.after(inboxConversation("bot:news"), 0, 5)).messages).toEqual([]);
    }
  });

  test.if(impl.failures)("a backend that fails: publish rejects with BrokerUnavailable, nobody receives it, no id is used", async () => {
    await make();
    const got = record(broker);
    await broker.subscribe(topics.room("f"));
    await broker.publish(room("f", "before"));
    // Delivered before the backend goes (a Redis without persistence forgets what it had).
    await eventually(() => got.length === 1, 5000, "the first message delivered");
    await subject.breakBackend!();
    // Big enough not to fit in the pages a full SQLite file has left.
    const failed = await broker.publish(room("f", `during ${"z".repeat(8000)}`)).then(() => null, (e: unknown) => e);
    expect(failed).toBeInstanceOf(BrokerUnavailable);
    await subject.repair!();
    await eventually(async () => (await broker.publish(room("f", "after")).then(() => true, () => false)), 10_000, "publishing works again");
    await eventually(() => got.some((d) => d.frame.text === "after"), 5000, "delivery after repair");
    expect(got.map((d) => d.frame.text)).toEqual(["before", "after"]);
    expect(got.map((d) => d.seq)).toEqual([1, 2]);
  }, 30_000);

  test.if(impl.losesHistory)("history lost while running: a new epoch, and ids continue above everything seen", async () => {
    await make();
    const got = record(broker);
    await broker.subscribe(topics.room("l"));
    for (let i = 0; i < 5; i++) await broker.publish(room("l", `old${i}`));
    const before = broker.epoch();
    await subject.loseHistory!();
    const next = await broker.publish(room("l", "new"));
    expect(broker.epoch()).not.toBe(before);
    expect(next.id).toBeGreaterThan(5);
    const other = await broker.publish(room("fresh-room", "first"));
    expect(other.id).toBeGreaterThan(5);
    await eventually(() => got.some((d) => d.frame.text === "new"), 5000, "the new message delivered");
    expect(got.map((d) => d.frame.text)).toEqual(["old0", "old1", "old2", "old3", "old4", "new"]);
  });

  test.if(impl.reconnects)("pub/sub connection killed three times: no duplicates, nothing published meanwhile is missed", async () => {
    await make();
    const got = record(broker);
    const otherNode = await subject.another!();
    await broker.subscribe(topics.room("k"));
    let n = 0;
    for (let kill = 0; kill < 3; kill++) {
      await subject.killSubscriber!();
      // Published by the other node while this one's pub/sub connection is down.
      for (let i = 0; i < 5; i++) await otherNode.publish(room("k", `m${n++}`));
    }
    await eventually(() => got.length >= n, 10_000, "every message delivered");
    await Bun.sleep(200);
    expect(got.map((d) => d.frame.text)).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    expect(got.map((d) => d.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  }, 30_000);
});

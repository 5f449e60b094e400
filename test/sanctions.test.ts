// Bans and mutes as data: the index every node checks on its hot paths (names, people, IP
// addresses and ranges, mutes per room, ends in time), IP ranges, close reasons, and one
// contract for the stores that keep them (memory, SQLite, Redis).
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { LocalBroker } from "../src/broker/local.ts";
import { MemorySanctions, SqliteSanctions } from "../src/broker/sanctions.ts";
import { VolatileStore } from "../src/broker/volatile.ts";
import { ClusterControl } from "../src/engine/control.ts";
import { BrokerUnavailable } from "../src/engine/ports.ts";
import { createLogger } from "../src/obs/log.ts";
import { engineHarness } from "./helpers/fakes.ts";
import { SqliteStore } from "../src/broker/sqlite.ts";
import { formatRange, inRange, parseIp, parseRange } from "../src/engine/ip-range.ts";
import { closeReason, Moderator } from "../src/engine/moderation.ts";
import { SanctionIndex, type Sanction, type SanctionStore } from "../src/engine/sanctions.ts";
import { RedisConnection } from "../src/redis/connection.ts";
import { RedisSanctions } from "../src/redis/sanctions.ts";
import { RedisServer } from "./helpers/redis.ts";
import { redisAvailable } from "./helpers/tools.ts";

const REDIS = await redisAvailable();

let n = 0;
const sanction = (fields: Partial<Sanction>): Sanction => ({
  id: `s${n++}`, kind: "ban", target: "name", value: "x", label: "x", until: 0, reason: "", created: n, by: "test", ...fields,
});

describe("the index", () => {
  test("bans by name key, person and address; a range covers its addresses, in both spellings", () => {
    const index = new SanctionIndex();
    index.add(sanction({ target: "name", value: "allce" }));
    index.add(sanction({ target: "person", value: "p1" }));
    index.add(sanction({ target: "ip", value: "203.0.113.7" }));
    index.add(sanction({ target: "ip", value: "2001:db8:42::/48" }));
    expect(index.nameBan("allce")?.target).toBe("name");
    expect(index.nameBan("bob")).toBeNull();
    expect(index.personBan("p1")?.target).toBe("person");
    for (const ip of ["203.0.113.7", "::ffff:203.0.113.7", "2001:db8:42:ffff::1"]) expect({ ip, banned: index.ipBan(ip) !== null }).toEqual({ ip, banned: true });
    for (const ip of ["203.0.113.8", "2001:db8:43::1", "unknown", ""]) expect({ ip, banned: index.ipBan(ip) !== null }).toEqual({ ip, banned: false });
  });

  test("a sanction ends at its time; the mute that ends last is the one told", () => {
    let now = 1000;
    const index = new SanctionIndex(() => now);
    index.add(sanction({ kind: "mute", target: "person", value: "p", room: "lobby", until: 5000 }));
    index.add(sanction({ kind: "mute", target: "person", value: "p", until: 3000 }));
    index.add(sanction({ target: "person", value: "p", until: 2000 }));
    expect(index.mute("p", "lobby")?.until).toBe(5000);
    expect(index.mute("p", "dev")?.until).toBe(3000);
    expect(index.mute("p", "")?.until).toBe(3000); // private messages: only a mute everywhere
    expect(index.personBan("p")).not.toBeNull();
    now = 3500;
    expect(index.personBan("p")).toBeNull();
    expect(index.mute("p", "dev")).toBeNull();
    expect(index.mute("p", "lobby")?.until).toBe(5000);
    index.prune();
    expect(index.size).toBe(1);
    index.add(sanction({ kind: "mute", target: "person", value: "p", until: 0 }));
    expect(index.mute("p", "lobby")?.until).toBe(0); // for ever outlasts any time
    index.add(sanction({ until: 10 })); // ended already: not added
    expect(index.size).toBe(2);
  });

  test("two bans of one name, person or address: each holds on its own, whichever ends or is lifted first", () => {
    let now = 1000;
    const index = new SanctionIndex(() => now);
    for (const [target, value, check] of [
      ["name", "allce", (i: SanctionIndex) => i.nameBan("allce")],
      ["person", "p1", (i: SanctionIndex) => i.personBan("p1")],
      ["ip", "203.0.113.7", (i: SanctionIndex) => i.ipBan("203.0.113.7")],
    ] as const) {
      const forever = sanction({ target, value, until: 0 });
      const brief = sanction({ target, value, until: 2000 });
      index.add(forever);
      index.add(brief);
      expect({ target, banned: check(index) !== null }).toEqual({ target, banned: true });
      index.remove(brief.id); // lifting the brief one leaves the one for ever
      expect({ target, banned: check(index)?.id }).toEqual({ target, banned: forever.id });
      index.add(brief);
      now = 3000; // the brief one has ended; the one for ever has not
      expect({ target, banned: check(index)?.id }).toEqual({ target, banned: forever.id });
      index.remove(forever.id);
      expect({ target, banned: check(index) }).toEqual({ target, banned: null });
      now = 1000;
    }
  });

  test("remove and load", () => {
    const index = new SanctionIndex();
    const ban = sanction({ target: "ip", value: "10.0.0.0/8" });
    index.add(ban);
    expect(index.ipBan("10.1.2.3")).toEqual(ban);
    expect(index.remove(ban.id)).toEqual(ban);
    expect(index.ipBan("10.1.2.3")).toBeNull();
    expect(index.remove(ban.id)).toBeNull();
    index.load([sanction({ value: "a" }), sanction({ value: "b" })]);
    index.load([sanction({ value: "c" })]);
    expect([index.nameBan("a"), index.nameBan("c")?.value]).toEqual([null, "c"]);
  });
});

describe("IP addresses and ranges", () => {
  test("parsed, written canonically, matched", () => {
    expect([...parseIp("::ffff:192.0.2.1")!]).toEqual([192, 0, 2, 1]);
    for (const bad of ["1.2.3", "1.2.3.256", "fe80::1::2", "1:2:3:4:5:6:7:8:9", "g::1", "1.2.3.4/33", "::/129", "x"]) expect({ bad, parsed: parseRange(bad) }).toEqual({ bad, parsed: null });
    expect(formatRange(parseRange("10.1.2.3/8")!)).toBe("10.0.0.0/8");
    expect(formatRange(parseRange("::ffff:10.1.2.3/104")!)).toBe("10.0.0.0/8");
    expect(formatRange(parseRange("2001:DB8:0:0:0:0:0:1")!)).toBe("2001:db8::1");
    expect(inRange(parseIp("192.168.1.77")!, parseRange("192.168.1.64/26")!)).toBe(true);
    expect(inRange(parseIp("192.168.1.128")!, parseRange("192.168.1.64/26")!)).toBe(false);
    expect(inRange(parseIp("::1")!, parseRange("0.0.0.0/0")!)).toBe(false);
  });

  test("close reasons are cut to 123 bytes at a character boundary", () => {
    expect(closeReason("short")).toBe("short");
    expect(new TextEncoder().encode(closeReason("é".repeat(100))).length).toBe(122);
    expect(closeReason("a".repeat(200))).toBe("a".repeat(123));
  });
});

describe("every node's copy", () => {
  test("a ban imposed while the node reloads from the store is not lost to the older list", async () => {
    const broker = new LocalBroker(new VolatileStore());
    const { engine } = engineHarness(broker);
    let answerList: (list: Sanction[]) => void = () => {};
    const store: SanctionStore = { add: async () => {}, remove: async () => null, list: () => new Promise((resolve) => (answerList = resolve)) };
    const log = createLogger("silent");
    const control = new ClusterControl(broker, engine.directory, "n1", log);
    broker.onDeliver(control.route(engine.deliver));
    await control.start();
    const moderator = new Moderator(engine, store, control, log);
    const reloading = moderator.reload();
    await moderator.impose(sanction({ value: "mallory" }));
    answerList([]); // read before the ban was stored
    await reloading;
    expect(moderator.index.nameBan("mallory")).not.toBeNull();
  });
});

let redis: RedisServer | null = null;
afterAll(async () => {
  await redis?.stop();
});

const STORES: { name: string; make(): Promise<{ store: SanctionStore; close(): Promise<void> }> }[] = [
  { name: "memory", make: async () => ({ store: new MemorySanctions(), close: async () => {} }) },
  {
    name: "SQLite",
    async make() {
      const history = new SqliteStore({ path: ":memory:", limit: 10, maxAgeSeconds: 0 });
      return { store: new SqliteSanctions((history as unknown as { db: Database }).db), close: async () => history.close() };
    },
  },
  ...(REDIS
    ? [{
        name: "Redis",
        async make() {
          redis ??= await RedisServer.start();
          const connection = new RedisConnection(redis.url);
          await connection.connect();
          const server = redis;
          return { store: new RedisSanctions(connection), close: async () => { connection.close(); await server.restart(0); } };
        },
      }]
    : []),
];

describe.each(STORES)("sanction store: $name", (impl) => {
  test("add, list what is in force, remove once", async () => {
    const { store, close } = await impl.make();
    try {
      const now = Date.now();
      const forever = sanction({ value: "a" });
      const later = sanction({ kind: "mute", target: "person", value: "p", room: "lobby", until: now + 60_000 });
      const ended = sanction({ value: "b", until: now - 1 });
      for (const s of [forever, later, ended]) await store.add(s);
      expect((await store.list(now)).sort((a, b) => a.created - b.created)).toEqual([forever, later]);
      expect(await store.remove(forever.id)).toEqual(forever);
      expect(await store.remove(forever.id)).toBeNull();
      expect(await store.remove(ended.id)).toBeNull();
      expect(await store.list(now)).toEqual([later]);
      expect(await store.list(now + 120_000)).toEqual([]);
    } finally {
      await close();
    }
  });
});

describe("a sanction store that fails", () => {
  test("SQLite: a failing database is an outage the API answers 503 (BrokerUnavailable), not a bug (500)", async () => {
    const db = new Database(":memory:");
    db.run("CREATE TABLE sanctions (id TEXT PRIMARY KEY, until INTEGER NOT NULL, record TEXT NOT NULL)");
    const store = new SqliteSanctions(db);
    db.run("DROP TABLE sanctions"); // like a full disk or an I/O error, every statement now throws
    for (const attempt of [() => store.add(sanction({})), () => store.list(Date.now()), () => store.remove("x")]) {
      await expect(attempt()).rejects.toBeInstanceOf(BrokerUnavailable);
    }
  });
});

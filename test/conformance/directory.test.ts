// One contract for every Directory: the embedded one (people in memory, or in the SQLite
// history file) and the Redis one. Who may hold a name (resume keys, token subjects, the
// grace period), connection caps, renames, lookups for private messages, and presence
// counted per person.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { MemoryIdentities, SqliteIdentities } from "../../src/broker/identities.ts";
import { SqliteStore } from "../../src/broker/sqlite.ts";
import { LocalDirectory } from "../../src/engine/local-directory.ts";
import type { Claim, ClaimRequest, Directory, DirectoryEvent } from "../../src/engine/ports.ts";
import { DirectoryUnavailable } from "../../src/engine/ports.ts";
import { Registry } from "../../src/engine/registry.ts";
import { createLogger } from "../../src/obs/log.ts";
import { RedisConnection } from "../../src/redis/connection.ts";
import { RedisDirectory } from "../../src/redis/directory.ts";
import { BURY } from "../../src/redis/scripts.ts";
import { eventually } from "../helpers/client.ts";
import { RedisServer } from "../helpers/redis.ts";
import { redisAvailable } from "../helpers/tools.ts";

// Without redis-server (and outside CI) the Redis directory's run is skipped, said once by tools.ts.
const REDIS = await redisAvailable();

const GRACE_MS = 300;
let redis: RedisServer | null = null;

interface Subject {
  directory: Directory;
  /** Another node's directory on the same backend (Redis only). */
  another?(): Promise<Directory>;
  /** Redis only: lose every key (a restart without persistence), bury a node, read a TTL. */
  flush?(): Promise<void>;
  bury?(node: string): Promise<void>;
  ttl?(key: string): Promise<number>;
  /** Redis only: any command, to plant a state no node would write (a key of the wrong type). */
  command?(command: string, args: string[]): Promise<unknown>;
  /** Drop a person from a directory's own maps without telling Redis (a detach lost in an outage). */
  forgetLocally?(directory: RedisDirectory, id: string, room: string): Promise<void>;
  close(): Promise<void>;
}

const ALL_IMPLEMENTATIONS: { name: string; make(): Promise<Subject> }[] = [
  {
    name: "embedded, people in memory",
    async make() {
      return { directory: new LocalDirectory(new Registry(), new MemoryIdentities(), GRACE_MS), close: async () => {} };
    },
  },
  {
    name: "embedded, people in the SQLite history",
    async make() {
      const store = new SqliteStore({ path: ":memory:", limit: 100, maxAgeSeconds: 0 });
      const directory = new LocalDirectory(new Registry(), new SqliteIdentities((store as unknown as { db: Database }).db), GRACE_MS);
      return { directory, close: async () => store.close() };
    },
  },
  {
    name: "Redis",
    async make() {
      redis ??= await RedisServer.start();
      const server = redis;
      const connections: RedisConnection[] = [];
      let n = 0;
      const open = async () => {
        const connection = new RedisConnection(server.url);
        await connection.connect();
        connections.push(connection);
        const directory = new RedisDirectory(connection, `node${n++}`, GRACE_MS, 86_400, createLogger("silent"), () => {});
        await directory.start();
        return directory;
      };
      const directory = await open();
      const admin = new RedisConnection(server.url);
      await admin.connect();
      connections.push(admin);
      return {
        directory,
        another: open,
        flush: async () => void (await admin.send("FLUSHALL", [])),
        async bury(node) {
          await admin.send("DEL", [`bc:node:${node}:alive`]);
          await admin.send("EVAL", [BURY, "0", node, String(Date.now()), "86400"]);
        },
        ttl: async (key) => (await admin.send("TTL", [key])) as number,
        command: (command, args) => admin.send(command, args),
        async forgetLocally(dir, id) {
          // The node's own record of the person, their memberships with it.
          (dir as unknown as { ownPeople: { delete(id: string): boolean } }).ownPeople.delete(id);
        },
        async close() {
          for (const c of connections) c.close();
          await server.restart(0);
        },
      };
    },
  },
];

const IMPLEMENTATIONS = ALL_IMPLEMENTATIONS.filter((impl) => REDIS || impl.name !== "Redis");

afterAll(async () => {
  await redis?.stop();
});

const ask = (name: string, extra: Partial<ClaimRequest> = {}): ClaimRequest => ({ name, key: name.toLowerCase(), ...extra });
function ok(claim: Claim): Extract<Claim, { ok: true }> {
  if (!claim.ok) throw new Error(`claim refused: ${claim.reason}`);
  return claim;
}

describe.each(IMPLEMENTATIONS)("directory contract: $name", (impl) => {
  let subject: Subject;
  let d: Directory;
  afterEach(async () => {
    await subject?.close();
  });
  const make = async () => {
    subject = await impl.make();
    d = subject.directory;
  };

  test("a free name makes a new person, told their resume key once", async () => {
    await make();
    const first = ok(await d.claim(ask("alice")));
    expect(first.resume).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(first.identity).toMatchObject({ name: "alice", key: "alice" });
    // Another tab while she is connected: the same person, under her current name (one
    // person shows one name; a new spelling is a nick)…
    const again = ok(await d.claim(ask("Alice", { resume: first.resume })));
    expect(again.identity.id).toBe(first.identity.id);
    expect(again.resume).toBeUndefined();
    expect(again.identity.name).toBe("alice");
    // …while a person coming back (no connection left) may bring a new spelling.
    d.detach(first.identity.id, 0);
    d.detach(first.identity.id, 0);
    const back = ok(await d.claim(ask("Alice", { resume: first.resume })));
    expect(back.identity).toMatchObject({ id: first.identity.id, name: "Alice" });
  });

  test("without the key, or with another one, a held name is taken", async () => {
    await make();
    ok(await d.claim(ask("alice")));
    expect(await d.claim(ask("alice"))).toEqual({ ok: false, reason: "taken" });
    const other = ok(await d.claim(ask("bob")));
    // Bob's key asking for alice's name while bob is connected: bob, under his name (a tab
    // that was away while another renamed him), never alice.
    const asBob = ok(await d.claim(ask("alice", { resume: other.resume })));
    expect(asBob.identity).toMatchObject({ id: other.identity.id, name: "bob" });
    // Bob gone: his key does not win a held name either.
    d.detach(other.identity.id, 0);
    d.detach(other.identity.id, 0);
    expect(await d.claim(ask("alice", { resume: other.resume }))).toEqual({ ok: false, reason: "taken" });
  });

  test("held through the grace period after the last connection, then free for someone new", async () => {
    await make();
    const alice = ok(await d.claim(ask("alice")));
    d.detach(alice.identity.id, 0);
    await Bun.sleep(50);
    expect(await d.claim(ask("alice"))).toEqual({ ok: false, reason: "taken" });
    await Bun.sleep(GRACE_MS + 50);
    const stranger = ok(await d.claim(ask("alice")));
    expect(stranger.identity.id).not.toBe(alice.identity.id);
    expect(stranger.resume).toBeDefined();
    // The first alice's key no longer wins the name while the stranger holds it…
    expect(await d.claim(ask("alice", { resume: alice.resume }))).toEqual({ ok: false, reason: "taken" });
    // …but once it is free again, she comes back as herself.
    d.detach(stranger.identity.id, 0);
    await Bun.sleep(GRACE_MS + 50);
    expect(ok(await d.claim(ask("alice", { resume: alice.resume }))).identity.id).toBe(alice.identity.id);
  });

  test("a token subject is one person on any number of devices", async () => {
    await make();
    const phone = ok(await d.claim(ask("carol", { subject: "carol" })));
    const laptop = ok(await d.claim(ask("carol", { subject: "carol" })));
    expect(phone.identity.id).toBe("t:carol");
    expect(laptop.identity.id).toBe("t:carol");
    expect(phone.resume).toBeUndefined();
    expect(await d.claim(ask("Carol", { subject: "Carol" }))).toEqual({ ok: false, reason: "taken" });
  });

  test("connections per person are capped", async () => {
    await make();
    const first = ok(await d.claim(ask("alice", { maxConnections: 2 })));
    ok(await d.claim(ask("alice", { resume: first.resume, maxConnections: 2 })));
    expect(await d.claim(ask("alice", { resume: first.resume, maxConnections: 2 }))).toEqual({ ok: false, reason: "too_many_connections" });
    d.detach(first.identity.id, 0);
    await Bun.sleep(20);
    ok(await d.claim(ask("alice", { resume: first.resume, maxConnections: 2 })));
  });

  test("a probe answers without counting or creating anyone", async () => {
    await make();
    expect((await d.claim(ask("alice"), true)).ok).toBe(true);
    expect(await d.lookup("alice")).toBeNull();
    ok(await d.claim(ask("alice")));
    expect(await d.claim(ask("alice"), true)).toEqual({ ok: false, reason: "taken" });
  });

  test("rename takes a free name and gives the old one up at once", async () => {
    await make();
    const alice = ok(await d.claim(ask("alice")));
    ok(await d.claim(ask("bob")));
    expect(await d.rename(alice.identity.id, "bob", "bob")).toBe(false);
    expect(await d.rename(alice.identity.id, "alicia", "Alicia")).toBe(true);
    expect(await d.lookup("alicia")).toMatchObject({ id: alice.identity.id, name: "Alicia", online: true });
    expect(await d.lookup("alice")).toBeNull();
    ok(await d.claim(ask("alice")));
  });

  test("lookup: who a private message reaches, online or away, with their inbox mark", async () => {
    await make();
    expect(await d.lookup("nobody")).toBeNull();
    const bob = ok(await d.claim(ask("bob")));
    expect(await d.lookup("bob")).toEqual({ id: bob.identity.id, name: "bob", online: true, delivered: 0 });
    d.detach(bob.identity.id, 7);
    await Bun.sleep(20);
    expect(await d.lookup("bob")).toEqual({ id: bob.identity.id, name: "bob", online: false, delivered: 7 });
    expect(ok(await d.claim(ask("bob", { resume: bob.resume }))).delivered).toBe(7);
  });

  test.if(impl.name !== "Redis")("a person with no connection is forgotten after the retention; a connected one never", async () => {
    let now = 1_000_000;
    const registry = new Registry();
    const store = impl.name.includes("SQLite") ? new SqliteIdentities((new SqliteStore({ path: ":memory:", limit: 100, maxAgeSeconds: 0 }) as unknown as { db: Database }).db) : new MemoryIdentities();
    const local = new LocalDirectory(registry, store, GRACE_MS, () => now);
    const gone = ok(await local.claim(ask("gone")));
    const stays = ok(await local.claim(ask("stays")));
    local.detach(gone.identity.id, 0);
    now += 10_000;
    expect(store.expire(now - 5_000, (id) => id === stays.identity.id)).toBe(1);
    expect(await local.lookup("gone")).toBeNull();
    expect(await local.lookup("stays")).toMatchObject({ id: stays.identity.id, online: true });
    subject = { directory: local, close: async () => {} };
  });

  test("presence per person: first join and last leave are announced", async () => {
    await make();
    const alice = ok(await d.claim(ask("alice")));
    expect(await d.joined("lobby", alice.identity.id, "alice")).toBe(true);
    expect(await d.online("lobby")).toBeGreaterThanOrEqual(0);
    expect(await d.left("lobby", alice.identity.id)).toBe(true);
  });

  test.if(impl.name === "Redis")("after Redis lost its data, a name someone else took meanwhile goes to them; the old holder is told", async () => {
    await make();
    const other = await subject.another!();
    const alice = ok(await d.claim(ask("alice")));
    const evicted: string[][] = [];
    (d as RedisDirectory).onEvicted = (ids) => evicted.push([...ids]);
    await subject.flush!();
    ok(await other.claim(ask("alice")));
    await (d as RedisDirectory).reannounce();
    expect(evicted).toEqual([[alice.identity.id]]);
  });

  test.if(impl.name === "Redis")("a node buried while it lived (frozen past its heartbeat) puts its people back at its next beat", async () => {
    await make();
    const redisDir = d as RedisDirectory;
    const dave = ok(await d.claim(ask("dave")));
    await d.joined("lobby", dave.identity.id, "dave");
    // What the others do when this node's heartbeat lapses: bury it.
    await subject.bury!(redisDir.nodeId);
    expect(await d.lookup("dave")).toMatchObject({ online: false });
    expect(await d.online("lobby")).toBe(0);
    await (redisDir as unknown as { beat(): Promise<void> }).beat();
    expect(await d.lookup("dave")).toMatchObject({ id: dave.identity.id, online: true });
    expect(await d.members("lobby", 10)).toEqual(["dave"]);
  });

  test.if(impl.name === "Redis")("after Redis lost its data, a person who renamed is put back in their rooms under the new name", async () => {
    await make();
    const erin = ok(await d.claim(ask("erin")));
    await d.joined("lobby", erin.identity.id, "erin");
    expect(await d.rename(erin.identity.id, "erin2", "erin2")).toBe(true);
    await subject.flush!();
    await (d as RedisDirectory).reannounce();
    expect(await d.members("lobby", 10)).toEqual(["erin2"]);
    expect(await d.lookup("erin2")).toMatchObject({ id: erin.identity.id, online: true });
  });

  test.if(impl.name === "Redis")("after Redis lost its data, a person another node renamed is put back under the new name", async () => {
    await make();
    const other = await subject.another!();
    const fay = ok(await d.claim(ask("fay")));
    ok(await other.claim(ask("fay", { resume: fay.resume })));
    await d.joined("lobby", fay.identity.id, "fay");
    // The other node renamed the person; this node hears it (cluster control) and follows.
    expect(await other.rename(fay.identity.id, "fay2", "fay2")).toBe(true);
    d.renamedElsewhere!(fay.identity.id, "fay2", "fay2");
    await subject.flush!();
    await (d as RedisDirectory).reannounce();
    expect(await d.members("lobby", 10)).toEqual(["fay2"]);
    expect(await d.lookup("fay")).toBeNull();
  });

  test.if(impl.name === "Redis")("detaches and leaves lost while Redis was down are taken back when it returns", async () => {
    await make();
    const bob = ok(await d.claim(ask("bob")));
    await d.joined("lobby", bob.identity.id, "bob");
    await subject.forgetLocally!(d as RedisDirectory, bob.identity.id, "lobby");
    await (d as RedisDirectory).reannounce();
    expect(await d.online("lobby")).toBe(0);
    expect(await d.lookup("bob")).toMatchObject({ online: false });
  });

  test.if(impl.name === "Redis")("a person with no connection expires after the retention; connecting again keeps them", async () => {
    await make();
    const carol = ok(await d.claim(ask("carol")));
    d.detach(carol.identity.id, 0);
    await Bun.sleep(50);
    const ttl = await subject.ttl!(`bc:id:${carol.identity.id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(86_400);
    ok(await d.claim(ask("carol", { resume: carol.resume })));
    expect(await subject.ttl!(`bc:id:${carol.identity.id}`)).toBe(-1);
  });

  test("rooms with people in them, in name order, paged, with their counts", async () => {
    await make();
    const people = await Promise.all(["ann", "ben", "cid"].map(async (n) => ok(await d.claim(ask(n))).identity.id));
    await d.joined("b-room", people[0]!, "ann");
    await d.joined("a-room", people[0]!, "ann");
    await d.joined("a-room", people[1]!, "ben");
    await d.joined("c-room", people[2]!, "cid");
    expect(await d.rooms("", 2)).toEqual({ rooms: [{ room: "a-room", online: 2 }, { room: "b-room", online: 1 }], more: true });
    expect(await d.rooms("b-room", 2)).toEqual({ rooms: [{ room: "c-room", online: 1 }], more: false });
    await d.left("b-room", people[0]!);
    expect((await d.rooms("", 10)).rooms.map((r) => r.room)).toEqual(["a-room", "c-room"]);
  });

  test("a room's people, page by page, with ids and their current names", async () => {
    await make();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = ok(await d.claim(ask(`p${i}`))).identity.id;
      ids.push(id);
      await d.joined("big", id, `p${i}`);
    }
    await d.joined("big", ids[0]!, "renamed");
    const seen = new Map<string, string>();
    let cursor: string | null = "0";
    for (let pages = 0; cursor !== null && pages < 20; pages++) {
      const page = await d.memberPage("big", cursor, 3);
      for (const m of page.members) seen.set(m.id, m.name);
      cursor = page.next;
    }
    expect(cursor).toBeNull();
    expect([...seen.keys()].sort()).toEqual([...ids].sort());
    expect(seen.get(ids[0]!)).toBe("renamed");
    expect(await d.memberPage("nobody-here", "0", 3)).toEqual({ members: [], next: null });
  });

  test("events: a person connects and disconnects once, a room is occupied and vacated once", async () => {
    await make();
    const events: DirectoryEvent[] = [];
    d.watch((e) => events.push(e));
    const alice = ok(await d.claim(ask("alice")));
    const id = alice.identity.id;
    ok(await d.claim(ask("alice", { resume: alice.resume })));
    const bob = ok(await d.claim(ask("bob"))).identity.id;
    await d.joined("lobby", id, "alice");
    await d.joined("lobby", bob, "bob");
    await d.joined("lobby", id, "alice"); // again (a nick): no event
    await d.left("lobby", id);
    await d.left("lobby", bob);
    d.detach(id, 0);
    d.detach(id, 0);
    await eventually(() => events.some((e) => e.type === "user.disconnected"), 5000, "the disconnect");
    await Bun.sleep(50);
    expect(events).toEqual([
      { type: "user.connected", person: id, name: "alice" },
      { type: "user.connected", person: bob, name: "bob" },
      { type: "room.occupied", room: "lobby" },
      { type: "member.joined", room: "lobby", person: id, name: "alice" },
      { type: "member.joined", room: "lobby", person: bob, name: "bob" },
      { type: "member.left", room: "lobby", person: id, name: "alice" },
      { type: "member.left", room: "lobby", person: bob, name: "bob" },
      { type: "room.vacated", room: "lobby" },
      { type: "user.disconnected", person: id, name: "alice" },
    ]);
  });

  // Requests made in one turn (Redis sends them in one call): each is decided as if made
  // alone, in the order made, seeing those before it.
  test("claims made together are decided in order, each seeing those before it", async () => {
    await make();
    const dana = ok(await d.claim(ask("dana")));
    const [first, second, bob, probe, danaAgain, renamedTab, capped] = await Promise.all([
      d.claim(ask("alice")),
      d.claim(ask("Alice")), // the same key: the first one of the turn holds it
      d.claim(ask("bob")),
      d.claim(ask("bob"), true), // a probe after bob's claim: taken
      d.claim(ask("dana", { resume: dana.resume })), // a returning person among newcomers
      d.claim(ask("someone-else", { resume: dana.resume })), // her key while she is here: her
      d.claim(ask("dana", { resume: dana.resume, maxConnections: 3 })), // her fourth connection
    ]);
    expect(ok(first).resume).toBeDefined();
    expect(second).toEqual({ ok: false, reason: "taken" });
    expect(ok(bob).identity.name).toBe("bob");
    expect(probe).toEqual({ ok: false, reason: "taken" });
    expect(ok(danaAgain).identity.id).toBe(dana.identity.id);
    expect(ok(renamedTab).identity).toMatchObject({ id: dana.identity.id, name: "dana" });
    expect(capped).toEqual({ ok: false, reason: "too_many_connections" });
    expect((await d.lookup("alice"))?.id).toBe(ok(first).identity.id);
    expect((await d.lookup("bob"))?.online).toBe(true);
  });

  test("a claim made after a detach or a rename sees it, however many claims came before", async () => {
    await make();
    const alice = ok(await d.claim(ask("alice", { maxConnections: 1 })));
    const bob = ok(await d.claim(ask("bob"))).identity.id;
    // One turn: a newcomer, then a page reload (the old connection goes, the new one
    // comes with her key), and bob's name given up, then asked for by someone else.
    const newcomer = d.claim(ask("zed"));
    d.detach(alice.identity.id, 7);
    const renamed = d.rename(bob, "robert", "robert");
    const [reload, bobsOldName] = await Promise.all([d.claim(ask("alice", { resume: alice.resume, maxConnections: 1 })), d.claim(ask("bob"))]);
    ok(await newcomer);
    expect(await renamed).toBe(true);
    expect(ok(reload)).toMatchObject({ identity: { id: alice.identity.id }, delivered: 7 });
    expect(ok(bobsOldName).identity.id).not.toBe(bob);
  });

  test("joins and leaves made together answer as one by one, in order", async () => {
    await make();
    const events: DirectoryEvent[] = [];
    const [a, b, c] = await Promise.all([d.claim(ask("ann")), d.claim(ask("ben")), d.claim(ask("cid"))]).then((all) => all.map((x) => ok(x).identity.id));
    d.watch((e) => events.push(e));
    const answers = await Promise.all([
      d.joined("lobby", a!, "ann"),
      d.joined("lobby", b!, "ben"),
      d.joined("lobby", a!, "ann"), // again: no change
      d.left("lobby", a!),
      d.joined("lobby", a!, "ann"), // back after the leave before it
      d.joined("side", c!, "cid"),
      d.joined("side", b!, "ben"),
      d.left("side", c!),
      d.left("side", b!),
    ]);
    expect(answers).toEqual([true, true, false, true, true, true, true, true, true]);
    expect(events.filter((e) => e.type === "room.occupied")).toEqual([{ type: "room.occupied", room: "lobby" }, { type: "room.occupied", room: "side" }]);
    expect(events.filter((e) => e.type === "room.vacated")).toEqual([{ type: "room.vacated", room: "side" }]);
    expect(await d.online("lobby")).toBe(2);
    expect((await d.members("lobby", 10)).sort()).toEqual(["ann", "ben"]);
    expect(await d.rooms("", 10)).toEqual({ rooms: [{ room: "lobby", online: 2 }], more: false });
    expect(await d.left("lobby", a!)).toBe(true);
    expect(await d.left("lobby", b!)).toBe(true);
    expect(await d.online("lobby")).toBe(0);
  });

  test("a node alone knows no other nodes", async () => {
    await make();
    expect(await d.otherNodes()).toEqual([]);
  });

  test.if(impl.name === "Redis")("across nodes: every event once per cluster, the people of a node that goes included", async () => {
    await make();
    const other = await subject.another!();
    const events: DirectoryEvent[] = [];
    d.watch((e) => events.push(e));
    other.watch((e) => events.push(e));
    expect(await d.otherNodes()).toEqual(["node1"]);
    const alice = ok(await d.claim(ask("alice")));
    const id = alice.identity.id;
    ok(await other.claim(ask("alice", { resume: alice.resume })));
    const bob = ok(await other.claim(ask("bob"))).identity.id;
    await Promise.all([d.joined("lobby", id, "alice"), other.joined("lobby", id, "alice"), other.joined("lobby", bob, "bob")]);
    await d.left("lobby", id);
    d.detach(id, 0);
    // The other node goes with alice and bob still on it: its burial tells who left.
    await (other as unknown as { close(): Promise<void> }).close();
    await eventually(() => events.filter((e) => e.type === "user.disconnected").length === 2, 5000, "both disconnected");
    const count = (type: string) => events.filter((e) => e.type === type).length;
    expect({ connected: count("user.connected"), occupied: count("room.occupied"), joined: count("member.joined") }).toEqual({ connected: 2, occupied: 1, joined: 2 });
    expect({ left: count("member.left"), vacated: count("room.vacated"), disconnected: count("user.disconnected") }).toEqual({ left: 2, vacated: 1, disconnected: 2 });
    expect(await d.rooms("", 10)).toEqual({ rooms: [], more: false });
  });

  test.if(impl.name === "Redis")("a request that fails in Redis fails alone, however many came with it", async () => {
    await make();
    // Keys of the wrong type: no node writes them; they stand for whatever makes Redis refuse one request.
    await subject.command!("SET", ["bc:conns:t:mallory", "not a hash"]);
    await subject.command!("SET", ["bc:roomnodes:broken", "not a hash"]);
    const [before, mallory, after] = await Promise.allSettled([d.claim(ask("y1")), d.claim(ask("mallory", { subject: "mallory" })), d.claim(ask("y2"))]);
    expect(before.status === "fulfilled" && before.value.ok).toBe(true);
    expect(mallory.status === "rejected" && mallory.reason).toBeInstanceOf(DirectoryUnavailable);
    expect(after.status === "fulfilled" && after.value.ok).toBe(true);
    expect((await d.lookup("y1"))?.online).toBe(true);
    const y1 = (await d.lookup("y1"))!.id;
    const joins = await Promise.allSettled([d.joined("fine", y1, "y1"), d.joined("broken", y1, "y1"), d.left("fine", y1)]);
    expect(joins.map((j) => (j.status === "fulfilled" ? j.value : j.reason instanceof DirectoryUnavailable ? "unavailable" : j.reason))).toEqual([true, "unavailable", true]);
    expect(await d.online("fine")).toBe(0);
  });

  test.if(impl.name === "Redis")("joins made together find a room empty only before the first of them", async () => {
    await make();
    const events: DirectoryEvent[] = [];
    d.watch((e) => events.push(e));
    // Counted in the room on another node but missing from its members (a key lost to
    // eviction): as one by one, the first join finds the room empty, the second does not.
    await subject.command!("HSET", ["bc:roomnodes:lobby", "pat", "1"]);
    expect(await Promise.all([d.joined("lobby", "pat", "pat"), d.joined("lobby", "quinn", "quinn")])).toEqual([false, true]);
    expect(events.filter((e) => e.type === "room.occupied")).toEqual([]);
  });

  test.if(impl.name === "Redis")("across nodes: joins made together count a person once per cluster", async () => {
    await make();
    const other = await subject.another!();
    const alice = ok(await d.claim(ask("alice")));
    ok(await other.claim(ask("alice", { resume: alice.resume })));
    const bob = ok(await d.claim(ask("bob"))).identity.id;
    expect(await other.joined("lobby", alice.identity.id, "alice")).toBe(true);
    // Alice is in the room through the other node already: joining here too is no news.
    expect(await Promise.all([d.joined("lobby", alice.identity.id, "alice"), d.joined("lobby", bob, "bob")])).toEqual([false, true]);
    expect(await other.left("lobby", alice.identity.id)).toBe(false);
    expect(await Promise.all([d.left("lobby", alice.identity.id), d.left("lobby", bob)])).toEqual([true, true]);
    expect(await d.online("lobby")).toBe(0);
  });

  test.if(impl.name === "Redis")("across nodes: one member however many nodes, announced once each way", async () => {
    await make();
    const other = await subject.another!();
    const alice = ok(await d.claim(ask("alice")));
    ok(await other.claim(ask("alice", { resume: alice.resume })));
    expect(await d.joined("lobby", alice.identity.id, "alice")).toBe(true);
    expect(await other.joined("lobby", alice.identity.id, "alice")).toBe(false);
    expect(await d.online("lobby")).toBe(1);
    expect(await d.members("lobby", 10)).toEqual(["alice"]);
    expect(await d.left("lobby", alice.identity.id)).toBe(false);
    expect(await other.left("lobby", alice.identity.id)).toBe(true);
    expect(await d.online("lobby")).toBe(0);
    // Connected on the other node: still held, even after this node's connection went.
    d.detach(alice.identity.id, 0);
    await Bun.sleep(GRACE_MS + 50);
    expect(await d.claim(ask("alice"))).toEqual({ ok: false, reason: "taken" });
  });
});

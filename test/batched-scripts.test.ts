// The batched Redis scripts against themselves, one request per call: CLAIM and MEMBERSHIP
// take a whole event-loop turn of requests in one call and share reads and writes between
// them (new people's names, resume keys and ids written together; joins into one room
// read and written together). Whatever they share, each request must answer what it
// answers alone, in its turn, and leave Redis as the requests one by one would.
// Differential and seeded: from the same random state on two Redis servers, the same
// requests run as one call on one and one call each on the other; answers and the whole
// keyspace (types, values, expiries) must match. A failing seed is printed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { CLAIM, DETACH, MEMBERSHIP, RENAME } from "../src/redis/scripts.ts";
import { seededRandom } from "./helpers/random.ts";
import { RedisServer } from "./helpers/redis.ts";
import { redisAvailable } from "./helpers/tools.ts";

const REDIS = await redisAvailable();
const SEP = "\u001f";
const GRACE = 1000;
const NOW = 100_000;
const ROUNDS = 150;

let batchedServer: RedisServer;
let aloneServer: RedisServer;
let batched: RedisClient;
let alone: RedisClient;

beforeAll(async () => {
  if (!REDIS) return;
  [batchedServer, aloneServer] = await Promise.all([RedisServer.start(), RedisServer.start()]);
  batched = new RedisClient(batchedServer.url);
  alone = new RedisClient(aloneServer.url);
  await Promise.all([batched.connect(), alone.connect()]);
});
afterAll(async () => {
  batched?.close();
  alone?.close();
  await Promise.all([batchedServer?.stop(), aloneServer?.stop()]);
});

const run = (c: RedisClient, script: string, keys: string[], args: string[]) => c.send("EVAL", [script, String(keys.length), ...keys, ...args]);
const both = (script: string, keys: string[], args: string[]) => Promise.all([run(batched, script, keys, args), run(alone, script, keys, args)]);

/** Every key, its type, value and whether it expires: what the two servers must agree on. */
async function keyspace(c: RedisClient): Promise<string[]> {
  const keys = ((await c.send("KEYS", ["*"])) as string[]).sort();
  const out: string[] = [];
  for (const key of keys) {
    const type = (await c.send("TYPE", [key])) as string;
    let value: unknown;
    if (type === "string") value = await c.send("GET", [key]);
    else if (type === "hash") {
      const all = (await c.send("HGETALL", [key])) as Record<string, string> | string[];
      const pairs = Array.isArray(all) ? Array.from({ length: all.length / 2 }, (_, i) => [all[2 * i], all[2 * i + 1]]) : Object.entries(all);
      value = pairs.map((e) => e.join("=")).sort();
    }
    else if (type === "set") value = ((await c.send("SMEMBERS", [key])) as string[]).sort();
    else value = await c.send("ZRANGE", [key, "0", "-1"]);
    const ttl = (await c.send("TTL", [key])) as number;
    out.push(`${key} ${type} ${ttl < 0 ? ttl : "expires"} ${JSON.stringify(value)}`);
  }
  return out;
}

describe.skipIf(!REDIS)("batched scripts answer as one request per call", () => {
  test(`CLAIM: ${ROUNDS} random turns of claims over random people`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const seed = 1000 + round;
      const random = seededRandom(seed);
      const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
      let fresh = 0;
      // Few names, resume keys and subjects, so requests collide: taken names, returning
      // people, other tabs, token people, caps, probes.
      const request = (probe = random() < 0.1) => {
        const key = pick(["k0", "k1", "k2", "k3"]);
        const subject = random() < 0.15 ? pick(["t:s0", "t:s1"]) : "";
        const resume = subject === "" && random() < 0.5 ? pick(["h0", "h1", "h2", "h3"]) : "";
        const n = fresh++;
        // A fresh hash sometimes from the pool: that person can be resumed later in the turn.
        const hash = n % 3 === 0 ? `h${n % 4}` : `x${n}`;
        return [key, random() < 0.5 ? key : key.toUpperCase(), resume, subject, `a${seed}-${n}`, hash, pick(["1", "2", "1000000"]), probe ? "1" : "0"].join(SEP);
      };
      await Promise.all([batched.send("FLUSHALL", []), alone.send("FLUSHALL", [])]);
      // The same history on both: people claimed on two nodes, some gone (in their grace
      // period or past it), some renamed.
      const people: [id: string, node: string][] = [];
      for (let step = 0; step < 12; step++) {
        const node = pick(["n1", "n2"]);
        const at = String(NOW - Math.floor(random() * 2 * GRACE));
        const op = random();
        if (op < 0.55 || people.length === 0) {
          const asked = request(false);
          const [answer] = (await both(CLAIM, ["bc:names"], [node, at, String(GRACE), asked])) as [string[], string[]];
          const id = answer[0] === "new" ? asked.split(SEP)[4]! : answer[0]!.split(SEP)[1];
          if (id) people.push([id, node]);
        } else if (op < 0.85) {
          const [id, node] = pick(people);
          await both(DETACH, [], [id, node, at, String(Math.floor(random() * 5)), "100000"]);
        } else {
          const key = pick(["k0", "k1", "k2", "k3"]);
          await both(RENAME, ["bc:names"], [pick(people)[0], key, key, at, String(GRACE)]);
        }
      }
      const node = pick(["n1", "n2"]);
      const turn = Array.from({ length: 1 + Math.floor(random() * 8) }, () => request());
      const together = (await run(batched, CLAIM, ["bc:names"], [node, String(NOW), String(GRACE), ...turn])) as string[];
      const oneByOne: string[] = [];
      for (const asked of turn) oneByOne.push(...((await run(alone, CLAIM, ["bc:names"], [node, String(NOW), String(GRACE), asked])) as string[]));
      expect({ seed, answers: together }).toEqual({ seed, answers: oneByOne });
      expect({ seed, keyspace: await keyspace(batched) }).toEqual({ seed, keyspace: await keyspace(alone) });
    }
  });

  test(`MEMBERSHIP: ${ROUNDS} random turns of joins and leaves over random rooms`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const seed = 2000 + round;
      const random = seededRandom(seed);
      const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
      const change = (room: string, person: string) => (random() < 0.7 ? ["j", room, person, `${person}-${Math.floor(random() * 2)}`] : ["l", room, person]).join(SEP);
      await Promise.all([batched.send("FLUSHALL", []), alone.send("FLUSHALL", [])]);
      // People already in rooms, on this node and on another (one by one on both).
      for (let step = 0; step < 8; step++) await both(MEMBERSHIP, [], [pick(["n1", "n2"]), change(pick(["r0", "r1", "r2"]), pick(["p0", "p1", "p2", "p3"]))]);
      // Mostly one room, so joins into it run together, with leaves between them.
      const turn = Array.from({ length: 1 + Math.floor(random() * 10) }, () => change(random() < 0.6 ? "r0" : pick(["r1", "r2"]), pick(["p0", "p1", "p2", "p3"])));
      const together = (await run(batched, MEMBERSHIP, [], ["n1", ...turn])) as number[];
      const oneByOne: number[] = [];
      for (const one of turn) oneByOne.push(...((await run(alone, MEMBERSHIP, [], ["n1", one])) as number[]));
      expect({ seed, answers: together }).toEqual({ seed, answers: oneByOne });
      expect({ seed, keyspace: await keyspace(batched) }).toEqual({ seed, keyspace: await keyspace(alone) });
    }
  });
});

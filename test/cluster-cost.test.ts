// What a connect costs in Redis, counted with MONITOR: cluster mode must connect at close
// to one node's speed, so a connect may cost only a handful of commands, all sent
// together (no round trip waits for another), and no scan over everyone.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ChatServer } from "../src/app.ts";
import { createLogger } from "../src/obs/log.ts";
import { RedisConnection } from "../src/redis/connection.ts";
import { RedisDirectory } from "../src/redis/directory.ts";
import { TestClient } from "./helpers/client.ts";
import { RedisServer } from "./helpers/redis.ts";
import { startServer } from "./helpers/server.ts";
import { redisAvailable } from "./helpers/tools.ts";

const REDIS = await redisAvailable();
/** Commands a connect may send (claim, history tail, room view, join) plus a little slack. */
const PER_CONNECT = 5;
/** Commands the claim and join scripts run for one newcomer who arrives alone in a turn. */
const IN_SCRIPTS = 11;
/** …and per newcomer when a turn brings many (they share the scripts' reads and writes). */
const IN_SCRIPTS_TOGETHER = 3;

let redis: RedisServer;
let node: ChatServer;

beforeAll(async () => {
  if (!REDIS) return;
  redis = await RedisServer.start();
  node = await startServer({ redisUrl: redis.url, nodeId: "a", rateLimit: 0, presenceWindow: 20 });
});
afterAll(async () => {
  await node?.stop();
  await redis?.stop();
});

/** Every command clients send to Redis while `during` runs; `inside`: those scripts run instead. */
async function monitored(server: RedisServer, during: () => Promise<void>, inside = false): Promise<string[]> {
  const lines: string[] = [];
  let buffer = "";
  const ready = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: {
      data(_s, chunk) {
        buffer += new TextDecoder().decode(chunk);
        let end: number;
        while ((end = buffer.indexOf("\r\n")) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (line === "+OK") ready.resolve();
          else if (line.includes(" lua]") === inside) lines.push(line);
        }
      },
    },
  });
  socket.write("MONITOR\r\n");
  await ready.promise;
  await during();
  await Bun.sleep(100);
  socket.end();
  return lines;
}

/** The command name of a MONITOR line: +1700000000.000000 [0 127.0.0.1:1234] "evalsha" … */
const commandOf = (line: string) => /\] "([a-z]+)"/i.exec(line)?.[1]?.toLowerCase() ?? "";

describe.skipIf(!REDIS)("the Redis cost of a connect", () => {
  test(`connecting N people costs at most ${PER_CONNECT} commands each, and no scan over everyone`, async () => {
    const N = 40;
    const clients: TestClient[] = [];
    const lines = await monitored(redis, async () => {
      const connects = Array.from({ length: N }, (_, i) => TestClient.connect(node.wsUrl, { name: `p${i}` }));
      clients.push(...(await Promise.all(connects)));
    });
    const commands = lines.map(commandOf).filter((c) => c !== "");
    // The node's own rhythm (heartbeat, sweep, ping, presence) is not per connect: at most a few dozen.
    const background = commands.filter((c) => ["set", "sadd", "smembers", "exists", "ping", "hlen", "publish"].includes(c)).length;
    expect(background).toBeLessThan(40);
    expect(commands.length - background).toBeLessThanOrEqual(N * PER_CONNECT);
    for (const scan of ["hgetall", "hkeys", "hvals", "keys", "scan", "smembers"]) {
      expect({ scan, count: commands.filter((c) => c === scan).length }).toEqual({ scan, count: scan === "smembers" ? expect.any(Number) : 0 });
    }
    for (const c of clients) c.close();
  });
});

describe.skipIf(!REDIS)("the Redis cost of a newcomer, inside the scripts", () => {
  // A Redis and a node of its own: nobody else's departures run scripts meanwhile.
  let ownRedis: RedisServer;
  let ownNode: ChatServer;
  beforeAll(async () => {
    ownRedis = await RedisServer.start();
    ownNode = await startServer({ redisUrl: ownRedis.url, nodeId: "b", rateLimit: 0, presenceWindow: 20 });
  });
  afterAll(async () => {
    await ownNode?.stop();
    await ownRedis?.stop();
  });

  test(`a newcomer's connect runs at most ${IN_SCRIPTS} commands inside the scripts`, async () => {
    // Each call into Redis from Lua costs a few microseconds, in the one Redis every node
    // shares: claiming a new name (6) and joining the room (5).
    const N = 40;
    const clients: TestClient[] = [];
    const lines = await monitored(ownRedis, async () => {
      const connects = Array.from({ length: N }, (_, i) => TestClient.connect(ownNode.wsUrl, { name: `newcomer${i}`, room: "fresh" }));
      clients.push(...(await Promise.all(connects)));
    }, true);
    // The room's view (HLEN, HSCAN) is read once per short window, however many join: not counted.
    const commands = lines.map(commandOf).filter((c) => c !== "hlen" && c !== "hscan");
    expect(commands.length).toBeLessThanOrEqual(N * IN_SCRIPTS);
    // And they were seen: every newcomer's claim counts a connection.
    expect(commands.filter((c) => c === "hincrby").length).toBeGreaterThanOrEqual(N);
    for (const c of clients) c.close();
  });
});

describe.skipIf(!REDIS)("the Redis cost of newcomers who arrive together", () => {
  // A Redis with no node on it: only this directory's commands are seen.
  let quietRedis: RedisServer;
  beforeAll(async () => {
    quietRedis = await RedisServer.start();
  });
  afterAll(async () => {
    await quietRedis?.stop();
  });

  test(`newcomers of one turn: one claim call and one join call, at most ${IN_SCRIPTS_TOGETHER} commands each inside`, async () => {
    const connection = new RedisConnection(quietRedis.url);
    await connection.connect();
    const directory = new RedisDirectory(connection, "c", 60_000, 86_400, createLogger("silent"), () => {});
    await directory.start();
    const N = 40;
    const sent = await monitored(quietRedis, async () => {
      const claims = await Promise.all(Array.from({ length: N }, (_, i) => directory.claim({ name: `together${i}`, key: `together${i}` })));
      const ids = claims.map((c) => (c.ok ? c.identity.id : ""));
      expect(ids.every((id) => id !== "")).toBe(true);
      expect(await Promise.all(ids.map((id, i) => directory.joined("together", id, `together${i}`)))).toEqual(ids.map(() => true));
    });
    const inside = await monitored(quietRedis, async () => {
      const claims = await Promise.all(Array.from({ length: N }, (_, i) => directory.claim({ name: `inside${i}`, key: `inside${i}` })));
      await Promise.all(claims.map((c, i) => directory.joined("inside", c.ok ? c.identity.id : "", `inside${i}`)));
    }, true);
    expect(sent.map(commandOf).filter((c) => c === "evalsha").length).toBe(2);
    expect(inside.length).toBeLessThanOrEqual(N * IN_SCRIPTS_TOGETHER);
    expect(inside.map(commandOf).filter((c) => c === "hincrby").length).toBe(N);
    await directory.close();
    connection.close();
  });
});

// Cluster mode in one place: with REDIS_URL, this process becomes a node. It opens a
// command connection and a pub/sub connection, and provides the Redis Broker and
// Directory that app.ts hands to the engine in place of the embedded defaults. It keeps
// the node healthy through Redis outages: reconnects, re-reads the epoch, re-announces
// this node's people.
import type { Config } from "../config.ts";
import { ConfigError } from "../config.ts";
import type { Logger } from "../obs/log.ts";
import { Counter, Gauge, Histogram, type Metrics } from "../obs/metrics.ts";
import { peopleRetentionSeconds } from "../engine/identity.ts";
import { RedisBroker } from "./broker.ts";
import { RedisConnection } from "./connection.ts";
import { RedisDirectory, SWEEP_MS } from "./directory.ts";
import { RedisSanctions } from "./sanctions.ts";

export interface Cluster {
  nodeId: string;
  broker: RedisBroker;
  directory: RedisDirectory;
  sanctions: RedisSanctions;
  health(): Record<string, unknown>;
  close(): Promise<void>;
}

export async function startCluster(config: Config, metrics: Metrics, log: Logger): Promise<Cluster> {
  const nodeId = config.nodeId || `node-${crypto.randomUUID().slice(0, 8)}`;
  let broker: RedisBroker | null = null;
  let directory: RedisDirectory | null = null;
  let downSince = 0;

  const commands = new RedisConnection(config.redisUrl, {
    onUp: async () => {
      if (!directory || !broker) return;
      log.info("redis_up", { connection: "commands", downForMs: downSince ? Date.now() - downSince : 0 });
      downSince = 0;
      await broker.reconnected().catch((e) => log.warn("redis_epoch_failed", { error: String(e) }));
      await directory.reannounce().catch((e) => log.warn("redis_reannounce_failed", { error: String(e) }));
    },
    onDown: (error) => {
      downSince ||= Date.now();
      log.warn("redis_down", { connection: "commands", error: error.message });
    },
  });
  broker = new RedisBroker(commands, config.redisUrl, { nodeId, limit: config.historyLimit, metrics, log });
  try {
    await commands.connect();
    await broker.start();
  } catch (error) {
    commands.close();
    await broker.close();
    throw new ConfigError(`cannot connect to --redis-url / REDIS_URL ${redact(config.redisUrl)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const b = broker;
  const dir = new RedisDirectory(commands, nodeId, config.nameGrace * 1000, peopleRetentionSeconds(config), log, (topic: string, frame: string) => b.broadcast(topic, frame));
  directory = dir;
  await dir.start();

  // Round trip to Redis, measured with PING on the heartbeat's rhythm.
  const roundTrip = new Histogram("bunchat_redis_round_trip_seconds", "PING round trip to Redis", [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1]);
  const pingErrors = new Counter("bunchat_redis_ping_errors_total", "PINGs to Redis that failed");
  metrics.add(roundTrip);
  metrics.add(pingErrors);
  const up = () => commands.up && b.subscriber.up;
  metrics.add(new Gauge("bunchat_redis_up", "1 while both Redis connections are up", () => (up() ? 1 : 0)));
  metrics.add(new Gauge("bunchat_redis_reconnects", "Redis reconnections since start", () => commands.reconnects + b.subscriber.reconnects));
  const pinger = setInterval(async () => {
    const started = performance.now();
    try {
      await commands.send("PING", []);
      roundTrip.observe((performance.now() - started) / 1000);
    } catch {
      pingErrors.inc();
    }
  }, SWEEP_MS);
  pinger.unref?.();

  return {
    nodeId,
    broker: b,
    directory: dir,
    sanctions: new RedisSanctions(commands),
    health: () => ({ ...dir.health(), redis: up() ? "up" : "down", epoch: b.epoch() }),
    async close() {
      clearInterval(pinger);
      await dir.close();
      await b.close();
      commands.close();
    },
  };
}

/** A Redis URL without its password, for logs and errors. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

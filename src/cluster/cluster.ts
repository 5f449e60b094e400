// Cluster mode in one place: with REDIS_URL, this process becomes a node. It opens two
// Redis connections (commands, and a dedicated subscriber), and provides the Redis
// HistoryStore, Bus and Directory that app.ts hands to the hub in place of the embedded
// defaults. It also keeps the node healthy through Redis outages.
import type { Deliver } from "../bus/bus.ts";
import { RedisBus } from "../bus/redis.ts";
import type { Config } from "../config.ts";
import { ConfigError } from "../config.ts";
import type { Logger } from "../obs/log.ts";
import { Counter, Gauge, Histogram, type Metrics } from "../obs/metrics.ts";
import { RedisHistory } from "../store/redis.ts";
import { RedisDirectory, SWEEP_MS } from "./directory.ts";
import { RedisConnection } from "./redis-connection.ts";

export interface Cluster {
  nodeId: string;
  store: RedisHistory;
  directory: RedisDirectory;
  makeBus(deliver: Deliver): RedisBus;
  /** Called after the subscriber reconnects, to fill the gap an outage left. */
  onResubscribed(replay: (topics: string[]) => Promise<void>): void;
  health(): Record<string, unknown>;
  close(): Promise<void>;
}

export async function startCluster(config: Config, metrics: Metrics, log: Logger): Promise<Cluster> {
  const nodeId = config.nodeId || `node-${crypto.randomUUID().slice(0, 8)}`;
  let bus: RedisBus | null = null;
  let replay: ((topics: string[]) => Promise<void>) | null = null;
  let directory: RedisDirectory | null = null;
  let store: RedisHistory | null = null;
  const downSince = { at: 0 };

  const commands = new RedisConnection(config.redisUrl, {
    onUp: async () => {
      if (!directory) return;
      log.info("redis_up", { connection: "commands", downForMs: downSince.at ? Date.now() - downSince.at : 0 });
      downSince.at = 0;
      await store?.load().catch(() => {});
      await directory.reannounce().catch((e) => log.warn("redis_reannounce_failed", { error: String(e) }));
    },
    onDown: (error) => {
      downSince.at ||= Date.now();
      log.warn("redis_down", { connection: "commands", error: error.message });
    },
  });
  const subscriber = new RedisConnection(config.redisUrl, {
    onUp: async () => {
      if (!bus) return;
      await bus.resubscribe().catch((e) => log.warn("redis_resubscribe_failed", { error: String(e) }));
      await replay?.(bus.topics()).catch((e) => log.warn("redis_replay_failed", { error: String(e) }));
    },
    onDown: (error) => log.warn("redis_down", { connection: "subscriber", error: error.message }),
  });
  try {
    await commands.connect();
    await subscriber.connect();
  } catch (error) {
    commands.close();
    subscriber.close();
    throw new ConfigError(`cannot connect to --redis-url / REDIS_URL ${redact(config.redisUrl)}: ${error instanceof Error ? error.message : String(error)}`);
  }

  store = new RedisHistory(commands, { limit: config.historyLimit, metrics });
  await store.load();
  const dir = new RedisDirectory(commands, nodeId, log, (topic, frame) => bus?.publish(topic, frame));
  directory = dir;
  await dir.start();

  // Round trip to Redis, measured with PING on the heartbeat's rhythm.
  const roundTrip = new Histogram("bunchat_redis_round_trip_seconds", "PING round trip to Redis", [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1]);
  const pingErrors = new Counter("bunchat_redis_ping_errors_total", "PINGs to Redis that failed");
  metrics.add(roundTrip);
  metrics.add(pingErrors);
  metrics.add(new Gauge("bunchat_redis_up", "1 while both Redis connections are up", () => (commands.up && subscriber.up ? 1 : 0)));
  metrics.add(new Gauge("bunchat_redis_reconnects", "Redis reconnections since start", () => commands.reconnects + subscriber.reconnects));
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

  log.info("cluster_node", { node: nodeId, redis: redact(config.redisUrl) });
  return {
    nodeId,
    store,
    directory: dir,
    makeBus(deliver) {
      bus = new RedisBus(commands, subscriber, deliver, metrics);
      return bus;
    },
    onResubscribed(fn) {
      replay = fn;
    },
    health: () => ({ ...dir.health(), redis: commands.up && subscriber.up ? "up" : "down" }),
    async close() {
      clearInterval(pinger);
      await dir.close();
      commands.close();
      subscriber.close();
    },
  };
}

/** A Redis URL without its password, for logs and errors. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

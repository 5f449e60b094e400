// In-process nodes joined through one redis-server per test file: Redis starts before the
// file's tests, is wiped after each test (after what the test tracked is closed and its
// nodes stopped), and stops after the last. Tests skip when Redis is not `available`.
import { afterAll, afterEach, beforeAll } from "bun:test";
import type { ChatServer } from "../../src/app.ts";
import type { Config } from "../../src/config.ts";
import { RedisServer } from "./redis.ts";
import { startServer } from "./server.ts";

export interface RedisNodes {
  /** The file's redis-server (set once `beforeAll` ran). */
  readonly redis: RedisServer;
  /** A node of the cluster, stopped after the test. */
  node(id: string, overrides?: Partial<Config>): Promise<ChatServer>;
  /** Close this after the test, before the nodes stop (clients, sockets). */
  track<T extends { close(): unknown }>(closeable: T): T;
  /** Run this after the test, before the nodes stop (child processes, Redis clients). */
  after(cleanup: () => unknown): void;
}

export function redisNodes(available: boolean): RedisNodes {
  let redis: RedisServer | undefined;
  const servers: ChatServer[] = [];
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    if (available) redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    if (!available) return;
    for (const cleanup of cleanups.splice(0)) await cleanup();
    for (const s of servers.splice(0)) await s.stop();
    await redis!.restart(0);
  });
  return {
    get redis() {
      return redis!;
    },
    async node(id, overrides = {}) {
      const s = await startServer({ redisUrl: redis!.url, nodeId: id, rateLimit: 0, presenceWindow: 20, ...overrides });
      servers.push(s);
      return s;
    },
    track(closeable) {
      cleanups.push(() => closeable.close());
      return closeable;
    },
    after(cleanup) {
      cleanups.push(cleanup);
    },
  };
}

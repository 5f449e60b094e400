// The servers a benchmark compares, each started fresh as its own process on a free
// loopback port, so one run's leftovers (sockets, memory, history) never skew the next.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, spawnListening, stopProcess } from "./process.ts";
import { RedisServer } from "./redis-server.ts";
import type { TargetKind } from "./wire.ts";

export interface TargetDef {
  name: string;
  kind: TargetKind;
  describe: string;
  /** Scenarios this target takes part in (all when absent). */
  only?: string[];
  start(): Promise<RunningTarget>;
}

export interface RunningTarget {
  name: string;
  kind: TargetKind;
  pid: number;
  httpUrl: string;
  wsUrls: string[];
  /** A second node's URL where publishers connect (cluster targets), else wsUrls. */
  publisherWsUrls: string[];
  stop(): Promise<void>;
}

/** Settings that make bunchat comparable with a bare broadcast server under load. */
export const BUNCHAT_BENCH_ENV: Record<string, string> = {
  HOST: "127.0.0.1",
  PORT: "0",
  LOG_LEVEL: "info",
  LOG_FORMAT: "json", // the "listening" line is read by machine
  RATE_LIMIT: "0", // the load generator floods on purpose
  MAX_CONNECTIONS: "19000", // below the 20,000 open files a process may hold here
  // Bun's default, as the bare server has; bunchat still closes (never silently skips) past it.
  BACKPRESSURE_LIMIT: String(16 * 1024 * 1024),
};

function bunchatTarget(name: string, describe: string, history: boolean, env: Record<string, string> = {}, only?: string[]): TargetDef {
  return {
    name,
    kind: "bunchat",
    describe,
    ...(only ? { only } : {}),
    async start() {
      const dir = mkdtempSync(join(tmpdir(), "bunchat-bench-"));
      const { proc, url } = await spawnListening(["bun", "src/server.ts"], {
        ...BUNCHAT_BENCH_ENV,
        HISTORY_DB: history ? join(dir, "bench.db") : "off",
        ...env,
      });
      const ws = `${url.replace("http", "ws")}/ws`;
      return {
        name, kind: "bunchat", pid: proc.pid, httpUrl: url, wsUrls: [ws], publisherWsUrls: [ws],
        async stop() {
          await stopProcess(proc);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

function peerTarget(name: string, describe: string, command: string[], kind: TargetKind = "peer"): TargetDef {
  return {
    name,
    kind,
    describe,
    async start() {
      const { proc, url } = await spawnListening(command, {});
      const ws = `${url.replace("http", "ws")}/`;
      return { name, kind, pid: proc.pid, httpUrl: url, wsUrls: [ws], publisherWsUrls: [ws], stop: () => stopProcess(proc) };
    },
  };
}

/** Two bunchat nodes joined by a fresh redis-server: publishers on one, subscribers on the other. */
function clusterTarget(): TargetDef {
  return {
    name: "bunchat-2nodes",
    kind: "bunchat",
    describe: "two bunchat nodes + Redis; publishers on node A, subscribers on node B",
    only: ["burst", "fanout", "fanout1k"],
    async start() {
      const redis = await RedisServer.start();
      const env = { ...BUNCHAT_BENCH_ENV, REDIS_URL: redis.url };
      const a = await spawnListening(["bun", "src/server.ts"], { ...env, NODE_ID: "bench-a" });
      const b = await spawnListening(["bun", "src/server.ts"], { ...env, NODE_ID: "bench-b" });
      const wsA = `${a.url.replace("http", "ws")}/ws`;
      const wsB = `${b.url.replace("http", "ws")}/ws`;
      return {
        name: "bunchat-2nodes", kind: "bunchat", pid: b.proc.pid, httpUrl: b.url, wsUrls: [wsB], publisherWsUrls: [wsA],
        async stop() {
          await Promise.all([stopProcess(a.proc), stopProcess(b.proc)]);
          await redis.stop();
        },
      };
    },
  };
}

/**
 * Two bunchat nodes that share nothing (no Redis; each has its own people and rooms),
 * clients alternating between them: what two processes reach on this machine with no
 * coordination at all, the ceiling for a cluster's two workers.
 */
function pairTarget(): TargetDef {
  return {
    name: "bunchat-pair",
    kind: "bunchat",
    describe: "two separate bunchat nodes (history off, no Redis), clients alternating",
    only: ["storm"],
    async start() {
      const one = bunchatTarget("bunchat-pair", "", false);
      const [a, b] = await Promise.all([one.start(), one.start()]);
      return {
        // Node A's pid: CPU and memory figures count one of the two.
        name: "bunchat-pair", kind: "bunchat", pid: a.pid, httpUrl: a.httpUrl, wsUrls: [...a.wsUrls, ...b.wsUrls], publisherWsUrls: a.wsUrls,
        async stop() {
          await Promise.all([a.stop(), b.stop()]);
        },
      };
    },
  };
}

/**
 * `--workers N` on one port with a fresh redis-server: N nodes of a cluster on this
 * machine. `history`: each connect replays the room's recent tail (HISTORY_ON_JOIN, the
 * default); without it HISTORY_ON_JOIN=0, the nearest a cluster gets to history off (its
 * history is the Redis stream). `host` 0.0.0.0 lets clients spread over 127.0.0.x.
 */
export function workersTarget(name: string, workers: number, options: { history: boolean; host?: string; only?: string[]; env?: Record<string, string> }): TargetDef {
  return {
    name,
    kind: "bunchat",
    describe: `bunchat --workers ${workers} + Redis${options.history ? ", replay on join" : ", no replay on join (HISTORY_ON_JOIN=0)"}`,
    ...(options.only ? { only: options.only } : {}),
    async start() {
      const redis = await RedisServer.start();
      const port = await freePort();
      const host = options.host ?? "127.0.0.1";
      const { proc } = await spawnListening(["bun", "src/server.ts", "--workers", String(workers), "--port", String(port), "--host", host], {
        ...BUNCHAT_BENCH_ENV,
        REDIS_URL: redis.url,
        NODE_ID: name,
        // A generous cap per worker: the fd limit (20,000 a process) is the real one.
        MAX_CONNECTIONS: "19500",
        ...(options.history ? {} : { HISTORY_ON_JOIN: "0" }),
        ...(options.env ?? {}),
      }, undefined, workers);
      const ws = `ws://127.0.0.1:${port}/ws`;
      return {
        name, kind: "bunchat", pid: proc.pid, httpUrl: `http://127.0.0.1:${port}`, wsUrls: [ws], publisherWsUrls: [ws],
        async stop() {
          await stopProcess(proc);
          await redis.stop();
        },
      };
    },
  };
}

export const TARGETS: Record<string, TargetDef> = {
  "bunchat": bunchatTarget("bunchat", "bunchat, history off (HISTORY_DB=off)", false),
  "bunchat+history": bunchatTarget("bunchat+history", "bunchat, history on (SQLite file, group commit)", true),
  "bare-bun": peerTarget("bare-bun", "bare Bun.serve pub/sub broadcast (bench/peers/bare-bun.ts)", ["bun", "bench/peers/bare-bun.ts", "0"]),
  "bare-bun-framed": peerTarget("bare-bun-framed", "bare Bun broadcast sending bunchat-shaped JSON frames (bare-bun.ts --framed)", ["bun", "bench/peers/bare-bun.ts", "0", "--framed"], "bunchat"),
  "bunchat-2nodes": clusterTarget(),
  "bunchat-pair": pairTarget(),
  // Cluster mode in one process: what Redis costs a connect, apart from a second process's share of two cores.
  "bunchat-workers1": workersTarget("bunchat-workers1", 1, { history: false, only: ["storm"] }),
  "bunchat-workers2": workersTarget("bunchat-workers2", 2, { history: false, only: ["storm", "burst"] }),
  "bunchat-workers2+history": workersTarget("bunchat-workers2+history", 2, { history: true, only: ["storm", "burst"] }),
  "bunchat-deflate-shared": bunchatTarget("bunchat-deflate-shared", "bunchat, history off, PER_MESSAGE_DEFLATE=shared", false, { PER_MESSAGE_DEFLATE: "shared" }, ["burst", "fanout", "fanout1k"]),
  "bunchat-deflate-dedicated": bunchatTarget("bunchat-deflate-dedicated", "bunchat, history off, PER_MESSAGE_DEFLATE=dedicated", false, { PER_MESSAGE_DEFLATE: "dedicated" }, ["burst", "fanout", "fanout1k"]),
  "ws-node": peerTarget("ws-node", "Node.js + ws, loop over clients (bench/peers/ws-node.cjs)", ["node", "bench/peers/ws-node.cjs", "0"]),
};

// The servers a benchmark compares, each started fresh as its own process on a free
// loopback port, so one run's leftovers (sockets, memory, history) never skew the next.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnListening, stopProcess } from "./process.ts";
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

function bunchatTarget(name: string, describe: string, history: boolean): TargetDef {
  return {
    name,
    kind: "bunchat",
    describe,
    async start() {
      const dir = mkdtempSync(join(tmpdir(), "bunchat-bench-"));
      const { proc, url } = await spawnListening(["bun", "src/server.ts"], {
        ...BUNCHAT_BENCH_ENV,
        HISTORY_DB: history ? join(dir, "bench.db") : "off",
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

export const TARGETS: Record<string, TargetDef> = {
  "bunchat": bunchatTarget("bunchat", "bunchat, history off (HISTORY_DB=off)", false),
  "bunchat+history": bunchatTarget("bunchat+history", "bunchat, history on (SQLite file, group commit)", true),
  "bare-bun": peerTarget("bare-bun", "bare Bun.serve pub/sub broadcast (bench/peers/bare-bun.ts)", ["bun", "bench/peers/bare-bun.ts", "0"]),
  "bare-bun-framed": peerTarget("bare-bun-framed", "bare Bun broadcast sending bunchat-shaped JSON frames (bare-bun.ts --framed)", ["bun", "bench/peers/bare-bun.ts", "0", "--framed"], "bunchat"),
  "bunchat-2nodes": clusterTarget(),
  "ws-node": peerTarget("ws-node", "Node.js + ws, loop over clients (bench/peers/ws-node.cjs)", ["node", "bench/peers/ws-node.cjs", "0"]),
};

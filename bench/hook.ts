// What the publish hook costs: bunchat with PUBLISH_HOOK_URL pointing at a local Bun hook
// server (bench/peers/hook-server.ts, allows everything) against the same bunchat without
// a hook, in one run: burst throughput and latency, fan-out latency. Fresh processes per
// run, targets alternating, medians of --reps; ratios are hook / no hook.
//
//   bun bench/hook.ts [--reps 3] [--clients 16] [--messages 100] [--subscribers 200]
//                     [--publishers 2] [--rate 100] [--duration 5] [--update-readme]
//
// Small by default: the machines are shared, and the ratio is what matters. A burst client
// sends at most 100 messages at once: more would wait for their checks beyond the 100 a
// connection may have waiting (engine/gate.ts), and be refused.
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { median } from "./lib/histogram.ts";
import { spawnListening, stopProcess } from "./lib/process.ts";
import { BUNCHAT_BENCH_ENV } from "./lib/targets.ts";
import { runLoad, type LoadOptions, type LoadResult } from "./load.ts";

export type Variant = "no hook" | "hook";
const WORKERS = Math.max(1, navigator.hardwareConcurrency);

export interface HookBenchOptions {
  reps: number;
  clients: number;
  messages: number;
  subscribers: number;
  publishers: number;
  rate: number;
  duration: number;
}

export const HOOK_BENCH_DEFAULTS: HookBenchOptions = { reps: 3, clients: 16, messages: 100, subscribers: 200, publishers: 2, rate: 100, duration: 5 };

async function run(o: HookBenchOptions, variant: Variant, hookUrl: string, scenario: "burst" | "fanout"): Promise<LoadResult> {
  const env = { ...BUNCHAT_BENCH_ENV, HISTORY_DB: "off", ...(variant === "hook" ? { PUBLISH_HOOK_URL: hookUrl, PUBLISH_HOOK_TIMEOUT: "5000" } : {}) };
  const server = await spawnListening(["bun", "src/server.ts"], env);
  const ws = `${server.url.replace("http", "ws")}/ws`;
  try {
    const common: LoadOptions = {
      scenario, kind: "bunchat", urls: [ws], clients: o.clients, messages: o.messages, publishers: o.publishers, rate: o.rate,
      durationSeconds: o.duration, size: 64, workers: WORKERS, timeoutSeconds: 60, concurrency: 64, room: "hook-bench", pid: server.proc.pid,
    };
    return await runLoad(scenario === "burst" ? common : { ...common, clients: o.subscribers });
  } finally {
    await stopProcess(server.proc);
  }
}

/** Every rep of both scenarios against both variants; the results by scenario and variant. */
export async function measureHook(o: HookBenchOptions, progress: (line: string) => void = () => {}): Promise<Record<"burst" | "fanout", Record<Variant, LoadResult[]>>> {
  const hook = await spawnListening(["bun", "bench/peers/hook-server.ts", "0"], {});
  const results: Record<"burst" | "fanout", Record<Variant, LoadResult[]>> = { burst: { "no hook": [], hook: [] }, fanout: { "no hook": [], hook: [] } };
  try {
    for (let rep = 0; rep < o.reps; rep++) {
      // Alternate which goes first, so neither always runs on a cooler machine.
      const order: Variant[] = rep % 2 === 0 ? ["no hook", "hook"] : ["hook", "no hook"];
      for (const scenario of ["burst", "fanout"] as const) {
        for (const variant of order) {
          const r = await run(o, variant, `${hook.url}/check`, scenario);
          if (r.lost > 0 || r.dropped > 0) throw new Error(`${scenario} ${variant}: ${r.lost} lost, ${r.dropped} dropped`);
          results[scenario][variant].push(r);
          progress(`rep ${rep + 1} ${scenario} ${variant}: ${Math.round(r.perSecond)}/s p50 ${r.latencyMs.p50.toFixed(2)} ms p99 ${r.latencyMs.p99.toFixed(2)} ms`);
        }
      }
    }
  } finally {
    await stopProcess(hook.proc);
  }
  return results;
}

/** The README table: medians, and hook / no hook. */
export function hookTable(o: HookBenchOptions, results: Record<"burst" | "fanout", Record<Variant, LoadResult[]>>): string {
  const med = (scenario: "burst" | "fanout", variant: Variant, pick: (r: LoadResult) => number) => median(results[scenario][variant].map(pick));
  const rows: ["burst" | "fanout", string, (r: LoadResult) => number, number][] = [
    ["burst", "deliveries/s", (r) => r.perSecond, 0],
    ["burst", "latency p50 (ms)", (r) => r.latencyMs.p50, 2],
    ["burst", "latency p99 (ms)", (r) => r.latencyMs.p99, 2],
    ["burst", "server CPU per message sent (µs)", (r) => ((r.serverCpuSeconds ?? 0) * 1e6) / Math.max(1, r.sent), 1],
    ["fanout", "latency p50 (ms)", (r) => r.latencyMs.p50, 2],
    ["fanout", "latency p99 (ms)", (r) => r.latencyMs.p99, 2],
  ];
  const fmt = (v: number, digits: number) => (digits === 0 ? Math.round(v).toLocaleString("en-US") : v.toFixed(digits));
  const command = `bun bench/hook.ts --reps ${o.reps} --clients ${o.clients} --messages ${o.messages} --subscribers ${o.subscribers} --publishers ${o.publishers} --rate ${o.rate} --duration ${o.duration}`;
  return [
    `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${cpus().length} × ${cpus()[0]?.model ?? "CPU"}; Bun ${Bun.version}.`,
    `Command: \`${command}\` (medians of ${o.reps}; burst: ${o.clients} clients × ${o.messages} messages; fanout: ${o.subscribers} subscribers, ${o.publishers} publishers, ${o.rate} messages/s for ${o.duration} s).`,
    "",
    "| scenario | measure | no hook | hook | hook / no hook |",
    "| --- | --- | ---: | ---: | ---: |",
    ...rows.map(([scenario, label, pick, digits]) => {
      const a = med(scenario, "no hook", pick);
      const b = med(scenario, "hook", pick);
      return `| ${scenario} | ${label} | ${fmt(a, digits)} | ${fmt(b, digits)} | ${(b / a).toFixed(2)}× |`;
    }),
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      reps: { type: "string" }, clients: { type: "string" }, messages: { type: "string" }, subscribers: { type: "string" },
      publishers: { type: "string" }, rate: { type: "string" }, duration: { type: "string" }, "update-readme": { type: "boolean", default: false },
    },
  });
  const o = { ...HOOK_BENCH_DEFAULTS };
  for (const key of Object.keys(o) as (keyof HookBenchOptions)[]) if (values[key] !== undefined) o[key] = Number(values[key]);
  const table = hookTable(o, await measureHook(o, (line) => process.stderr.write(`${line}\n`)));
  console.log(table);
  if (values["update-readme"]) {
    const path = join(import.meta.dir, "README.md");
    const readme = readFileSync(path, "utf8");
    const start = "<!-- hook:start -->";
    const end = "<!-- hook:end -->";
    if (!readme.includes(start)) throw new Error(`bench/README.md has no ${start} marker`);
    writeFileSync(path, `${readme.slice(0, readme.indexOf(start) + start.length)}\n${table}\n${readme.slice(readme.indexOf(end))}`);
  }
}

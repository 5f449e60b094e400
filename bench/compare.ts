// Side-by-side numbers: every chosen scenario against bunchat (history off and on), bare
// Bun and ws-Node, in one run, alternating targets over several repetitions; medians and
// ratios; bench/results/<timestamp>.json and .svg; optionally rewrites bench/README.md.
//
//   bun bench/compare.ts [--scenarios burst,fanout,idle,storm,private,http] [--targets …]
//                        [--reps 3] [--quick] [--out bench/results] [--update-readme]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runHttp } from "./http.ts";
import { median } from "./lib/histogram.ts";
import { barChart } from "./lib/chart.ts";
import { TARGETS, type RunningTarget } from "./lib/targets.ts";
import { runLoad, type LoadOptions, type LoadResult } from "./load.ts";
import type { Scenario } from "./lib/worker.ts";

type ScenarioName = Scenario | "http" | "fanout1k";

interface Measure {
  /** The headline number of the scenario. */
  value: number;
  unit: string;
  higherIsBetter: boolean;
  /** Other numbers worth keeping (loss, percentiles, CPU). */
  detail: Record<string, number | boolean>;
}

interface ScenarioDef {
  describe: string;
  run(target: RunningTarget, quick: boolean): Promise<Measure>;
}

const WORKERS = Math.max(1, navigator.hardwareConcurrency);

function loadOptions(target: RunningTarget, scenario: Scenario, sizes: Partial<LoadOptions>): LoadOptions {
  return {
    scenario,
    kind: target.kind,
    urls: target.wsUrls,
    publisherUrls: target.publisherWsUrls,
    clients: 32,
    messages: 100,
    publishers: 4,
    rate: 200,
    durationSeconds: 10,
    size: 64,
    workers: WORKERS,
    timeoutSeconds: 45,
    concurrency: 256,
    room: "bench",
    pid: target.pid,
    ...sizes,
  };
}

function loadDetail(r: LoadResult): Record<string, number | boolean> {
  return {
    lost: r.lost, duplicates: r.duplicates, reordered: r.reordered, closedEarly: r.closedEarly, refused: r.refused,
    p50: r.latencyMs.p50, p99: r.latencyMs.p99, perSecond: r.perSecond, seconds: r.seconds,
    serverCpuSeconds: r.serverCpuSeconds ?? 0, loopbackBytes: r.loopbackBytes ?? 0, timedOut: r.timedOut,
  };
}

const SCENARIOS: Record<ScenarioName, ScenarioDef> = {
  burst: {
    describe: "32 clients in one room each send 1600 messages as fast as accepted; deliveries/s",
    async run(t, quick) {
      // On a cluster target the clients alternate between the nodes, so half the traffic crosses Redis.
      const urls = [...new Set([...t.wsUrls, ...t.publisherWsUrls])];
      const r = await runLoad({ ...loadOptions(t, "burst", quick ? { clients: 4, messages: 50 } : { clients: 32, messages: 1600 }), urls });
      return { value: r.lost > 0 ? 0 : r.perSecond, unit: "deliveries/s", higherIsBetter: true, detail: { ...loadDetail(r), cpuMicrosPerDelivery: ((r.serverCpuSeconds ?? 0) * 1e6) / Math.max(1, r.received) } };
    },
  },
  fanout: {
    describe: "5000 subscribers, 4 publishers, 200 messages/s for 10 s; p99 latency (ms)",
    async run(t, quick) {
      const r = await runLoad(loadOptions(t, "fanout", quick ? { clients: 10, publishers: 2, rate: 20, durationSeconds: 1 } : { clients: 5000, publishers: 4, rate: 200, durationSeconds: 10 }));
      return { value: r.latencyMs.p99, unit: "ms p99", higherIsBetter: false, detail: loadDetail(r) };
    },
  },
  fanout1k: {
    describe: "1000 subscribers, 4 publishers, 200 messages/s for 10 s (a load this machine sustains); p99 latency (ms)",
    async run(t, quick) {
      const r = await runLoad(loadOptions(t, "fanout", quick ? { clients: 10, publishers: 2, rate: 20, durationSeconds: 1 } : { clients: 1000, publishers: 4, rate: 200, durationSeconds: 10 }));
      return { value: r.latencyMs.p99, unit: "ms p99", higherIsBetter: false, detail: loadDetail(r) };
    },
  },
  storm: {
    describe: "10,000 connects as fast as possible; connects/s",
    async run(t, quick) {
      const r = await runLoad(loadOptions(t, "storm", quick ? { clients: 50 } : { clients: 10_000 }));
      return { value: r.perSecond, unit: "connects/s", higherIsBetter: true, detail: loadDetail(r) };
    },
  },
  idle: {
    describe: "15,000 idle connections; server memory per connection (KiB)",
    async run(t, quick) {
      const r = await runLoad(loadOptions(t, "idle", quick ? { clients: 50 } : { clients: 15_000 }));
      return { value: (r.bytesPerConnection ?? 0) / 1024, unit: "KiB/conn", higherIsBetter: false, detail: loadDetail(r) };
    },
  },
  private: {
    describe: "100 pairs exchange 200 private messages each; round-trip p50 (ms)",
    async run(t, quick) {
      const r = await runLoad(loadOptions(t, "private", quick ? { clients: 4, messages: 10 } : { clients: 200, messages: 200 }));
      return { value: r.latencyMs.p50, unit: "ms p50 RTT", higherIsBetter: false, detail: loadDetail(r) };
    },
  },
  scale: {
    describe: "15,000 connections held 5 s, then one message fanned out to all; server memory per connection (KiB)",
    async run(t, quick) {
      const r = await runLoad(loadOptions(t, "scale", quick ? { clients: 200, holdSeconds: 1, messages: 1 } : { clients: 15_000, holdSeconds: 5, messages: 1, timeoutSeconds: 120 }));
      return { value: (r.bytesPerConnection ?? 0) / 1024, unit: "KiB/conn", higherIsBetter: false, detail: { ...loadDetail(r), connectsPerSecond: r.connectsPerSecond ?? 0 } };
    },
  },
  http: {
    describe: "autocannon, 50 connections, 10 s against /healthz; requests/s",
    async run(t, quick) {
      const r = await runHttp(`${t.httpUrl}/healthz`, quick ? 1 : 10, quick ? 4 : 50);
      return { value: r.requestsPerSecond, unit: "requests/s", higherIsBetter: true, detail: { p50: r.latencyMs.p50, p99: r.latencyMs.p99, non2xx: r.non2xx, errors: r.errors } };
    },
  },
};

/** The goals from the load-test issue: ratio of bunchat (or a variant) to a reference. */
const GOALS: { scenario: ScenarioName; target: string; versus: string; goal: (ratio: number) => boolean; text: string }[] = [
  { scenario: "burst", target: "bunchat", versus: "bare-bun", goal: (r) => r >= 0.95, text: "≥ 0.95× bare Bun" },
  { scenario: "burst", target: "bunchat", versus: "bare-bun-framed", goal: (r) => r >= 0.95, text: "≥ 0.95× bare Bun sending the same frames" },
  { scenario: "burst", target: "bunchat+history", versus: "bare-bun", goal: (r) => r >= 0.9, text: "≥ 0.9× bare Bun" },
  { scenario: "burst", target: "bunchat+history", versus: "bunchat", goal: (r) => r >= 0.95, text: "within 5% of history off" },
  { scenario: "burst", target: "bunchat", versus: "ws-node", goal: (r) => r >= 10, text: "≥ 10× ws-Node" },
  { scenario: "fanout", target: "bunchat", versus: "bare-bun", goal: (r) => r <= 1.25, text: "p99 ≤ 1.25× bare Bun, zero loss" },
  { scenario: "fanout1k", target: "bunchat", versus: "bare-bun", goal: (r) => r <= 1.25, text: "p99 ≤ 1.25× bare Bun, zero loss" },
  { scenario: "burst", target: "bunchat-2nodes", versus: "bunchat", goal: (r) => r >= 0.5, text: "Redis hop costs < 2× throughput" },
  { scenario: "idle", target: "bunchat", versus: "bare-bun", goal: (r) => r <= 1.5, text: "≤ 1.5× bare Bun" },
  { scenario: "storm", target: "bunchat", versus: "bare-bun", goal: (r) => r >= 0.8, text: "≥ 0.8× bare Bun" },
  { scenario: "storm", target: "bunchat-workers2", versus: "bunchat", goal: (r) => r >= 0.8, text: "cluster connects ≥ 0.8× one node" },
  { scenario: "storm", target: "bunchat-workers2+history", versus: "bunchat", goal: (r) => r >= 0.8, text: "cluster connects ≥ 0.8× one node" },
  { scenario: "http", target: "bunchat", versus: "bare-bun", goal: (r) => r >= 0.9, text: "≥ 0.9× bare Bun" },
];

interface RunRecord {
  scenario: ScenarioName;
  target: string;
  rep: number;
  measure: Measure | null;
  error?: string;
}

interface Summary {
  scenario: ScenarioName;
  target: string;
  unit: string;
  median: number;
  values: number[];
  lossFree: boolean;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      scenarios: { type: "string" },
      targets: { type: "string" },
      reps: { type: "string" },
      quick: { type: "boolean" },
      out: { type: "string" },
      "update-readme": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(`bun bench/compare.ts [--scenarios ${Object.keys(SCENARIOS).join(",")}] [--targets ${Object.keys(TARGETS).join(",")}] [--reps 3] [--quick] [--out DIR] [--update-readme]`);
    return;
  }
  const scenarios = (values.scenarios ?? "burst,fanout,fanout1k,idle,storm,private,http").split(",") as ScenarioName[];
  const targets = (values.targets ?? "bunchat,bunchat+history,bare-bun,bare-bun-framed,ws-node,bunchat-2nodes").split(",");
  for (const s of scenarios) if (!(s in SCENARIOS)) throw new Error(`unknown scenario ${s}`);
  for (const t of targets) if (!(t in TARGETS)) throw new Error(`unknown target ${t}`);
  const reps = Number(values.reps ?? 3);
  const quick = values.quick === true;
  const outDir = values.out ?? join(import.meta.dir, "results");
  const command = `bun bench/compare.ts ${Bun.argv.slice(2).join(" ")}`.trim();
  const runs: RunRecord[] = [];

  for (const scenario of scenarios) {
    for (let rep = 0; rep < reps; rep++) {
      // Alternate the order so no target always runs on a warmer (or hotter) machine.
      const taking = targets.filter((t) => !TARGETS[t]!.only || TARGETS[t]!.only!.includes(scenario));
      const order = taking.map((_, i) => taking[(i + rep) % taking.length]!);
      for (const name of order) {
        const target = await TARGETS[name]!.start();
        let record: RunRecord;
        try {
          record = { scenario, target: name, rep, measure: await SCENARIOS[scenario].run(target, quick) };
        } catch (error) {
          record = { scenario, target: name, rep, measure: null, error: error instanceof Error ? error.message : String(error) };
        } finally {
          await target.stop();
        }
        runs.push(record);
        const m = record.measure;
        console.error(`${scenario} rep ${rep + 1}/${reps} ${name}: ${m ? `${m.value.toFixed(2)} ${m.unit}${m.detail.lost ? ` (lost ${m.detail.lost})` : ""}` : `error: ${record.error}`}`);
      }
    }
  }

  const summaries: Summary[] = [];
  for (const scenario of scenarios) {
    for (const target of targets) {
      const measures = runs.filter((r) => r.scenario === scenario && r.target === target && r.measure).map((r) => r.measure!);
      if (measures.length === 0) continue;
      summaries.push({
        scenario, target, unit: measures[0]!.unit,
        median: median(measures.map((m) => m.value)),
        values: measures.map((m) => m.value),
        lossFree: measures.every((m) => !m.detail.lost && !m.detail.duplicates && !m.detail.reordered && !m.detail.closedEarly),
      });
    }
  }
  const get = (scenario: string, target: string) => summaries.find((s) => s.scenario === scenario && s.target === target);
  const goals = GOALS.filter((g) => get(g.scenario, g.target) && get(g.scenario, g.versus)).map((g) => {
    const ratio = get(g.scenario, g.target)!.median / get(g.scenario, g.versus)!.median;
    const lossOk = !g.scenario.startsWith("fanout") || get(g.scenario, g.target)!.lossFree;
    return { ...g, ratio, met: g.goal(ratio) && lossOk, lossFree: get(g.scenario, g.target)!.lossFree };
  });

  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", memoryGiB: Math.round(totalmem() / 2 ** 30) };
  const versions = { bun: Bun.version, node: (await Bun.$`node --version`.text()).trim(), ws: (await Bun.file(join(import.meta.dir, "..", "node_modules", "ws", "package.json")).json()).version as string };
  const table = markdownTable(scenarios, targets, summaries, goals);
  const chart = barChart(
    scenarios.map((scenario) => ({
      label: `${scenario} (${get(scenario, targets[0]!)?.unit ?? ""})`,
      bars: targets.filter((t) => get(scenario, t)).map((t) => ({ name: t, value: get(scenario, t)!.median })),
      higherIsBetter: runs.find((r) => r.scenario === scenario && r.measure)?.measure?.higherIsBetter ?? true,
    })),
  );
  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, `${stamp}.json`);
  const svgPath = join(outDir, `${stamp}.svg`);
  writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), command, machine, versions, reps, quick, runs, summaries, goals: goals.map(({ goal: _, ...rest }) => rest) }, null, 2));
  writeFileSync(svgPath, chart);
  writeFileSync(join(outDir, "latest.svg"), chart);
  const header = `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${machine.cpus} × ${machine.model}, ${machine.memoryGiB} GiB; Bun ${versions.bun}, Node ${versions.node}, ws ${versions.ws}.\nCommand: \`${command}\` (medians of ${reps}).`;
  console.log(`\n${header}\n\n${table}\n\nwrote ${jsonPath} and ${svgPath}`);
  if (values["update-readme"]) {
    const readme = join(import.meta.dir, "README.md");
    const text = readFileSync(readme, "utf8");
    const block = `<!-- results:start -->\n${header}\n\n${table}\n\n![chart](results/latest.svg)\n<!-- results:end -->`;
    writeFileSync(readme, text.replace(/<!-- results:start -->[\s\S]*<!-- results:end -->/, block));
  }
}

function fmt(value: number, unit: string): string {
  if (!Number.isFinite(value)) return "—";
  if (unit.includes("/s")) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(2);
}

function markdownTable(scenarios: ScenarioName[], targets: string[], summaries: Summary[], goals: { scenario: string; target: string; versus: string; ratio: number; met: boolean; text: string; lossFree: boolean }[]): string {
  const lines = [`| scenario | unit | ${targets.join(" | ")} |`, `| --- | --- | ${targets.map(() => "---:").join(" | ")} |`];
  for (const scenario of scenarios) {
    const cells = targets.map((t) => {
      const s = summaries.find((x) => x.scenario === scenario && x.target === t);
      return s ? `${fmt(s.median, s.unit)}${s.lossFree ? "" : " ⚠ loss"}` : "—";
    });
    const unit = summaries.find((x) => x.scenario === scenario)?.unit ?? "";
    lines.push(`| ${scenario} | ${unit} | ${cells.join(" | ")} |`);
  }
  lines.push("", "| goal | ratio | met |", "| --- | ---: | --- |");
  for (const g of goals) lines.push(`| ${g.scenario}: ${g.target} ${g.text} | ${g.ratio.toFixed(2)}× ${g.versus} | ${g.met ? "yes" : "**no**"} |`);
  return lines.join("\n");
}

await main();
process.exit(0);

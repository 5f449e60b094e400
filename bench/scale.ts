// "How do you handle large numbers of concurrent connections?" — bunchat's answer in
// numbers, from one command, on the machine it runs on:
//   1. cluster connects: storm of 10,000 against one node vs --workers 2 vs --workers 2
//      with replay on join (and, with no goal, two nodes sharing nothing and one worker in
//      cluster mode), alternating, medians; the ratio to one node.
//   2. per-message deflate off / shared / dedicated: burst and fan-out with chat-like
//      text; throughput, latency, server CPU and the bytes that crossed loopback.
//   3. scale: bare Bun's memory per connection at 15,000 (the reference), then
//      `--workers` + Redis holding --clients connections spread over several loopback
//      addresses for --hold seconds, one message fanned out to all of them; then the same
//      people in 1,000 rooms of 100 chatting at a steady rate.
// Writes bench/results/scale-<time>.json and .svg; --update-readme rewrites the scale
// section of bench/README.md.
//
//   bun bench/scale.ts [--parts storm,deflate,scale] [--clients 100000] [--hold 60]
//                      [--workers 6] [--reps 3] [--quick] [--out DIR] [--update-readme]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { barChart } from "./lib/chart.ts";
import { median } from "./lib/histogram.ts";
import { TARGETS, workersTarget, type RunningTarget, type TargetDef } from "./lib/targets.ts";
import { runLoad, spreadOver, type LoadOptions, type LoadResult } from "./load.ts";

const CORES = Math.max(1, navigator.hardwareConcurrency);

function options(t: RunningTarget, o: Partial<LoadOptions> & Pick<LoadOptions, "scenario">): LoadOptions {
  return {
    kind: t.kind, urls: t.wsUrls, publisherUrls: t.publisherWsUrls, clients: 32, messages: 100, publishers: 4, rate: 200,
    durationSeconds: 10, size: 64, workers: CORES, timeoutSeconds: 60, concurrency: 256, room: "bench", pid: t.pid, ...o,
  };
}

async function withTarget<T>(def: TargetDef, run: (t: RunningTarget) => Promise<T>): Promise<T> {
  const t = await def.start();
  try {
    return await run(t);
  } finally {
    await t.stop();
  }
}

interface Row {
  part: string;
  target: string;
  measure: string;
  value: number;
  unit: string;
  detail: Record<string, number | boolean | string>;
}

function detail(r: LoadResult): Record<string, number | boolean> {
  return {
    connected: r.connected, refused: r.refused, lost: r.lost, duplicates: r.duplicates, reordered: r.reordered, closedEarly: r.closedEarly,
    p50: r.latencyMs.p50, p99: r.latencyMs.p99, max: r.latencyMs.max, perSecond: r.perSecond, seconds: r.seconds,
    serverCpuSeconds: r.serverCpuSeconds ?? 0, loopbackBytes: r.loopbackBytes ?? 0, timedOut: r.timedOut,
  };
}

async function stormPart(reps: number, quick: boolean, log: (line: string) => void): Promise<Row[]> {
  // No goal on bunchat-pair and bunchat-workers1: two nodes that share nothing show what a
  // second process gives on a machine of few cores, one process in cluster mode what Redis
  // costs a connect; between them they separate the two costs of --workers 2.
  const names = ["bunchat", "bunchat-pair", "bunchat-workers1", "bunchat-workers2", "bunchat-workers2+history"];
  const values = new Map<string, number[]>(names.map((n) => [n, []]));
  const clients = quick ? 200 : 10_000;
  for (let rep = 0; rep < reps; rep++) {
    // Alternate the order so no target always runs on a warmer (or hotter) machine.
    for (const name of names.map((_, i) => names[(i + rep) % names.length]!)) {
      const r = await withTarget(TARGETS[name]!, (t) => runLoad(options(t, { scenario: "storm", clients, timeoutSeconds: 120 })));
      values.get(name)!.push(r.lost > 0 ? 0 : r.perSecond);
      log(`storm rep ${rep + 1}/${reps} ${name}: ${Math.round(r.perSecond)} connects/s (p99 ${r.latencyMs.p99.toFixed(0)} ms, connected ${r.connected})`);
    }
  }
  const one = median(values.get("bunchat")!);
  return names.map((name) => {
    const value = median(values.get(name)!);
    return { part: "storm", target: name, measure: `${clients} connects`, value, unit: "connects/s", detail: { vsOneNode: `${(value / one).toFixed(2)}×`, runs: values.get(name)!.map((v) => Math.round(v)).join(" ") } };
  });
}

async function deflatePart(quick: boolean, log: (line: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const size = 256;
  for (const name of ["bunchat", "bunchat-deflate-shared", "bunchat-deflate-dedicated"]) {
    const burst = await withTarget(TARGETS[name]!, (t) =>
      runLoad(options(t, { scenario: "burst", clients: quick ? 4 : 32, messages: quick ? 50 : 800, size, prose: true })));
    rows.push({ part: "deflate", target: name, measure: "burst", value: burst.lost > 0 ? 0 : burst.perSecond, unit: "deliveries/s", detail: { ...detail(burst), bytesPerDelivery: (burst.loopbackBytes ?? 0) / Math.max(1, burst.received) } });
    const fan = await withTarget(TARGETS[name]!, (t) =>
      runLoad(options(t, { scenario: "fanout", clients: quick ? 10 : 1000, publishers: 4, rate: quick ? 20 : 200, durationSeconds: quick ? 1 : 10, size, prose: true })));
    rows.push({ part: "deflate", target: name, measure: "fanout 1000", value: fan.latencyMs.p99, unit: "ms p99", detail: { ...detail(fan), bytesPerDelivery: (fan.loopbackBytes ?? 0) / Math.max(1, fan.received) } });
    log(`deflate ${name}: burst ${Math.round(burst.perSecond)}/s, ${(Number(rows.at(-2)!.detail.bytesPerDelivery)).toFixed(0)} B/delivery; fanout p99 ${fan.latencyMs.p99.toFixed(1)} ms, ${(Number(rows.at(-1)!.detail.bytesPerDelivery)).toFixed(0)} B/delivery`);
  }
  return rows;
}

async function scalePart(clients: number, hold: number, workers: number, quick: boolean, log: (line: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  // The reference: bare Bun's memory per idle connection, at 15,000, in this same run.
  const reference = quick ? 200 : 15_000;
  for (const name of ["bare-bun", "bunchat"]) {
    const r = await withTarget(TARGETS[name]!, (t) => runLoad(options(t, { scenario: "idle", clients: reference, timeoutSeconds: 120 })));
    rows.push({ part: "scale", target: name, measure: `idle ${reference}`, value: (r.bytesPerConnection ?? 0) / 1024, unit: "KiB/conn", detail: detail(r) });
    log(`idle ${reference} ${name}: ${((r.bytesPerConnection ?? 0) / 1024).toFixed(2)} KiB per connection`);
  }
  // ~28,000 connections fit one (client address, server address) pair: one address per 25,000.
  const addresses = Math.max(1, Math.ceil(clients / 25_000));
  const target = workersTarget(`bunchat-workers${workers}`, workers, { history: true, host: "0.0.0.0", env: { MAX_CONNECTIONS: "19500", PRESENCE_WINDOW: "500" } });
  await withTarget(target, async (t) => {
    const urls = spreadOver(t.wsUrls, addresses);
    const base = options(t, { scenario: "scale", urls, clients, holdSeconds: hold, messages: 1, concurrency: 512, timeoutSeconds: quick ? 30 : 300 });
    const all = await runLoad({ ...base, progress: process.stderr.isTTY === true });
    const perConn = (all.bytesPerConnection ?? 0) / 1024;
    const perConnHeld = (all.bytesPerConnectionHeld ?? 0) / 1024;
    rows.push({ part: "scale", target: t.name, measure: `${clients} held, 1 to all`, value: all.connected, unit: "connections", detail: { ...detail(all), connectSeconds: all.connectSeconds ?? 0, connectsPerSecond: all.connectsPerSecond ?? 0, heldSeconds: all.heldSeconds ?? 0, serverRssMiB: (all.serverRssBytes ?? 0) / 2 ** 20, kibPerConnection: perConn, serverRssHeldMiB: (all.serverRssHeldBytes ?? 0) / 2 ** 20, kibPerConnectionHeld: perConnHeld, addresses, workers } });
    log(`scale ${clients}: connected ${all.connected} in ${all.connectSeconds?.toFixed(1)} s, held ${all.heldSeconds?.toFixed(0)} s, ${perConn.toFixed(2)} KiB/conn (${perConnHeld.toFixed(2)} at the end of the hold), fan-out p50 ${all.latencyMs.p50.toFixed(0)} / p99 ${all.latencyMs.p99.toFixed(0)} ms, lost ${all.lost}`);
    const roomsCount = quick ? 10 : 1000;
    // A busy chat: each room hears a message every 5 s (200 messages/s, 20,000 deliveries/s at
    // 100,000 people). 500/s saturates this 2-core machine with the generator on it (measured:
    // 46,700 of 50,000 deliveries/s, p50 1.2 s), which measures the queue, not the server.
    const roomsRate = quick ? 50 : 200;
    const rooms = await runLoad({ ...base, rooms: roomsCount, rate: roomsRate, durationSeconds: quick ? 2 : 30, holdSeconds: quick ? 1 : 10, progress: process.stderr.isTTY === true });
    rows.push({ part: "scale", target: t.name, measure: `${roomsCount} rooms of ${Math.round(clients / roomsCount)}, ${roomsRate} msgs/s`, value: rooms.latencyMs.p99, unit: "ms p99", detail: { ...detail(rooms), rooms: roomsCount, rate: roomsRate } });
    log(`scale ${roomsCount} rooms: connected ${rooms.connected}, ${Math.round(rooms.perSecond)} deliveries/s, p50 ${rooms.latencyMs.p50.toFixed(1)} / p99 ${rooms.latencyMs.p99.toFixed(1)} ms, lost ${rooms.lost}`);
  });
  return rows;
}

function table(rows: Row[]): string {
  const lines = ["| part | target | measure | value | detail |", "| --- | --- | --- | ---: | --- |"];
  for (const r of rows) {
    const d = r.detail;
    const extra = r.part === "deflate"
      ? `server CPU ${Number(d.serverCpuSeconds).toFixed(2)} s, ${Number(d.bytesPerDelivery).toFixed(0)} loopback bytes per delivery, lost ${d.lost}`
      : r.part === "scale" && r.unit === "connections"
        ? `${Number(d.connectSeconds).toFixed(0)} s to connect (${Math.round(Number(d.connectsPerSecond))}/s), held ${Number(d.heldSeconds).toFixed(0)} s, ${Number(d.serverRssMiB).toFixed(0)} MiB RSS = ${Number(d.kibPerConnection).toFixed(2)} KiB/conn once connected, ${Number(d.serverRssHeldMiB).toFixed(0)} MiB = ${Number(d.kibPerConnectionHeld).toFixed(2)} KiB/conn at the end of the hold, fan-out p50 ${Number(d.p50).toFixed(0)} / p99 ${Number(d.p99).toFixed(0)} ms, server CPU ${Number(d.serverCpuSeconds).toFixed(0)} s, lost ${d.lost}`
        : r.part === "scale" && r.unit === "ms p99"
          ? `${Math.round(Number(d.perSecond))} deliveries/s, p50 ${Number(d.p50).toFixed(1)} ms, lost ${d.lost}`
          : r.part === "storm" ? `${d.vsOneNode} one node; runs: ${d.runs}` : `lost ${d.lost}`;
    const value = r.unit.includes("/s") || r.unit === "connections" ? Math.round(r.value).toLocaleString("en-US") : r.value.toFixed(2);
    lines.push(`| ${r.part} | ${r.target} | ${r.measure} | ${value} ${r.unit} | ${extra} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      parts: { type: "string" }, clients: { type: "string" }, hold: { type: "string" }, workers: { type: "string" }, reps: { type: "string" },
      quick: { type: "boolean" }, out: { type: "string" }, "update-readme": { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log("bun bench/scale.ts [--parts storm,deflate,scale] [--clients 100000] [--hold 60] [--workers 6] [--reps 3] [--quick] [--out DIR] [--update-readme]");
    return;
  }
  const quick = values.quick === true;
  const parts = (values.parts ?? "storm,deflate,scale").split(",");
  const clients = Number(values.clients ?? (quick ? 300 : 100_000));
  const hold = Number(values.hold ?? (quick ? 1 : 60));
  // Each worker may hold about 19,500 sockets (the 20,000 files a process may hold here);
  // 17,000 each leaves room for SO_REUSEPORT's uneven spreading, and no more processes
  // than that: each one's own start-up memory counts in the memory per connection.
  const workers = Number(values.workers ?? Math.max(2, Math.ceil(clients / 17_000)));
  const reps = Number(values.reps ?? (quick ? 1 : 3));
  const log = (line: string) => console.error(line);
  const rows: Row[] = [];
  if (parts.includes("storm")) rows.push(...(await stormPart(reps, quick, log)));
  if (parts.includes("deflate")) rows.push(...(await deflatePart(quick, log)));
  if (parts.includes("scale")) rows.push(...(await scalePart(clients, hold, workers, quick, log)));

  const get = (part: string, target: string, measure?: string) => rows.find((r) => r.part === part && r.target === target && (!measure || r.measure.startsWith(measure)));
  const goals: { text: string; value: string; met: boolean }[] = [];
  const one = get("storm", "bunchat");
  for (const t of ["bunchat-workers2", "bunchat-workers2+history"]) {
    const w = get("storm", t);
    if (one && w) goals.push({ text: `storm: ${t} ≥ 0.8× one node`, value: `${(w.value / one.value).toFixed(2)}×`, met: w.value / one.value >= 0.8 });
  }
  const bare = get("scale", "bare-bun", "idle");
  const big = rows.find((r) => r.part === "scale" && r.unit === "connections");
  if (bare && big) {
    const ratio = Number(big.detail.kibPerConnection) / bare.value;
    goals.push({ text: `scale: memory per connection once connected (all workers' RSS) ≤ 1.5× bare Bun at ${bare.measure.split(" ")[1]}`, value: `${ratio.toFixed(2)}×`, met: ratio <= 1.5 });
    goals.push({ text: `scale: ${clients} connections held and fanned out with zero loss`, value: `${big.value} held, lost ${big.detail.lost}`, met: big.value === clients && big.detail.lost === 0 });
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", memoryGiB: Math.round(totalmem() / 2 ** 30) };
  const command = `bun bench/scale.ts ${Bun.argv.slice(2).join(" ")}`.trim();
  const header = `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${machine.cpus} × ${machine.model}, ${machine.memoryGiB} GiB; Bun ${Bun.version}.\nCommand: \`${command}\`.`;
  const goalTable = ["| goal | value | met |", "| --- | ---: | --- |", ...goals.map((g) => `| ${g.text} | ${g.value} | ${g.met ? "yes" : "**no**"} |`)].join("\n");
  const chart = barChart(
    [...new Set(rows.map((r) => `${r.part} ${r.measure}`))].map((label) => {
      const group = rows.filter((r) => `${r.part} ${r.measure}` === label);
      return { label: `${label} (${group[0]!.unit})`, bars: group.map((r) => ({ name: r.target, value: r.value })), higherIsBetter: !group[0]!.unit.startsWith("ms") && !group[0]!.unit.startsWith("KiB") };
    }),
  );
  const outDir = values.out ?? join(import.meta.dir, "results");
  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, `scale-${stamp}.json`);
  const svgPath = join(outDir, `scale-${stamp}.svg`);
  writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), command, machine, bun: Bun.version, rows, goals }, null, 2));
  writeFileSync(svgPath, chart);
  writeFileSync(join(outDir, "scale-latest.svg"), chart);
  const block = `${header}\n\n${table(rows)}\n\n${goalTable}\n\n![scale chart](results/scale-latest.svg)`;
  console.log(`\n${block}\n\nwrote ${jsonPath} and ${svgPath}`);
  if (values["update-readme"]) {
    const readme = join(import.meta.dir, "README.md");
    const text = readFileSync(readme, "utf8");
    const section = `<!-- scale:start -->\n${block}\n<!-- scale:end -->`;
    writeFileSync(readme, /<!-- scale:start -->[\s\S]*<!-- scale:end -->/.test(text) ? text.replace(/<!-- scale:start -->[\s\S]*<!-- scale:end -->/, section) : `${text.trimEnd()}\n\n## Scale\n\n${section}\n`);
  }
}

await main();
process.exit(0);

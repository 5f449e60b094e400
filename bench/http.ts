// HTTP throughput with autocannon's programmatic API: /healthz and, when the target keeps
// history, the history endpoint. Requests/s and latency percentiles.
//   bun bench/http.ts [--url http://127.0.0.1:3000] [--duration 10] [--connections 50] [--json]
import autocannon from "autocannon";
import { parseArgs } from "node:util";

export interface HttpResult {
  url: string;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  errors: number;
}

export async function runHttp(url: string, durationSeconds: number, connections: number): Promise<HttpResult> {
  const host = new URL(url).hostname;
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== "localhost" && host !== "[::1]") throw new Error(`refusing non-loopback target ${url}`);
  const result = await autocannon({ url, duration: durationSeconds, connections, pipelining: 1 });
  return {
    url,
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: { url: { type: "string" }, duration: { type: "string" }, connections: { type: "string" }, json: { type: "boolean" } },
  });
  const base = values.url ?? "http://127.0.0.1:3000";
  const duration = Number(values.duration ?? 10);
  const connections = Number(values.connections ?? 50);
  const results: HttpResult[] = [await runHttp(`${base}/healthz`, duration, connections)];
  const probe = await fetch(`${base}/api/rooms/lobby/messages?limit=50`).catch(() => null);
  const keepsHistory = probe?.ok && (probe.headers.get("content-type") ?? "").includes("json");
  if (keepsHistory) results.push(await runHttp(`${base}/api/rooms/lobby/messages?limit=50`, duration, connections));
  if (values.json) console.log(JSON.stringify(results));
  else
    for (const r of results) {
      console.log(`${r.url}\n  requests/s ${Math.round(r.requestsPerSecond).toLocaleString("en-US")}  latency p50 ${r.latencyMs.p50} ms  p99 ${r.latencyMs.p99} ms  max ${r.latencyMs.max} ms  non-2xx ${r.non2xx}  errors ${r.errors}`);
    }
}

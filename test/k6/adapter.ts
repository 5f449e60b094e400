// A TEST ADAPTER, not a k6 replacement: exactly the k6 API surface that bench/fanout.js
// and bench/connect.js use (k6/websockets, k6/timers, k6/metrics, k6/execution, the two
// executors they name, thresholds), implemented on Bun so the test suite can run the real
// scripts for a few seconds with 1–2 VUs and prove they speak bunchat's protocol and count
// deliveries right. Anything the scripts do not use throws, so a script that drifts from
// this surface fails its smoke test instead of silently passing.

// ---- VU context ----------------------------------------------------------------------

interface Vu {
  id: number;
  scenario: string;
  iterationInTest: number;
  handles: number;
  onIdle: (() => void) | null;
}

let current: Vu | null = null;

function withVu<T>(vu: Vu, fn: () => T): T {
  const previous = current;
  current = vu;
  try {
    return fn();
  } finally {
    current = previous;
  }
}

function hold(vu: Vu): void {
  vu.handles++;
}

function release(vu: Vu): void {
  vu.handles--;
  if (vu.handles <= 0) queueMicrotask(() => vu.handles <= 0 && vu.onIdle?.());
}

function needVu(): Vu {
  if (!current) throw new Error("k6 adapter: API used outside a VU iteration");
  return current;
}

// ---- k6/metrics ----------------------------------------------------------------------

type MetricKind = "counter" | "trend" | "rate" | "gauge";

export class MetricStore {
  readonly samples = new Map<string, { kind: MetricKind; values: number[] }>();
  add(name: string, kind: MetricKind, value: number): void {
    let m = this.samples.get(name);
    if (!m) {
      m = { kind, values: [] };
      this.samples.set(name, m);
    }
    m.values.push(value);
  }
  /** The aggregate k6 names in threshold expressions: count, rate, avg, min, max, med, p(N), value. */
  aggregate(name: string, stat: string): number {
    const m = this.samples.get(name);
    const values = m?.values ?? [];
    const sorted = [...values].sort((a, b) => a - b);
    const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : 0);
    if (stat === "count") return m?.kind === "counter" ? values.reduce((a, b) => a + b, 0) : values.length;
    if (stat === "rate") return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
    if (stat === "avg") return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
    if (stat === "min") return sorted[0] ?? 0;
    if (stat === "max") return sorted.at(-1) ?? 0;
    if (stat === "med") return pct(50);
    if (stat === "value") return values.at(-1) ?? 0;
    const p = /^p\((\d+(?:\.\d+)?)\)$/.exec(stat);
    if (p) return pct(Number(p[1]));
    throw new Error(`k6 adapter: threshold aggregation "${stat}" not supported`);
  }
}

let metrics = new MetricStore();

function metricClass(kind: MetricKind) {
  return class {
    constructor(readonly name: string, _isTime?: boolean) {}
    add(value: number | boolean): void {
      metrics.add(this.name, kind, typeof value === "boolean" ? (value ? 1 : 0) : value);
    }
  };
}

// ---- k6/timers -----------------------------------------------------------------------

function k6SetTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const vu = needVu();
  hold(vu);
  const t = setTimeout(() => {
    activeTimers.delete(t);
    try {
      withVu(vu, fn);
    } finally {
      release(vu);
    }
  }, ms);
  activeTimers.set(t, vu);
  return t;
}

function k6ClearTimeout(t: ReturnType<typeof setTimeout>): void {
  const vu = activeTimers.get(t);
  if (!vu) return;
  activeTimers.delete(t);
  clearTimeout(t);
  release(vu);
}

function k6SetInterval(fn: () => void, ms: number): ReturnType<typeof setInterval> {
  const vu = needVu();
  hold(vu);
  const t = setInterval(() => withVu(vu, fn), ms);
  activeTimers.set(t, vu);
  return t;
}

function k6ClearInterval(t: ReturnType<typeof setInterval>): void {
  const vu = activeTimers.get(t);
  if (!vu) return;
  activeTimers.delete(t);
  clearInterval(t);
  release(vu);
}

const activeTimers = new Map<ReturnType<typeof setTimeout>, Vu>();

// ---- k6/websockets -------------------------------------------------------------------

/** What k6 passes listeners: `data` on messages, `error` on errors, `code`/`reason` on closes. */
interface K6Event {
  type: string;
  data?: unknown;
  error?: string;
  code?: number;
  reason?: string;
}
type Listener = (event: K6Event) => void;

class K6WebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  private readonly ws: WebSocket;
  private readonly vu: Vu;
  private readonly listeners = new Map<string, Listener[]>();
  onopen: Listener | null = null;
  onmessage: Listener | null = null;
  onclose: Listener | null = null;
  onerror: Listener | null = null;

  constructor(url: string, protocols?: string | string[]) {
    this.vu = needVu();
    hold(this.vu);
    this.ws = new WebSocket(url, protocols);
    let released = false;
    const releaseOnce = () => {
      if (!released) {
        released = true;
        release(this.vu);
      }
    };
    this.ws.addEventListener("open", () => this.dispatch("open", {}));
    this.ws.addEventListener("message", (e) => this.dispatch("message", { data: e.data }));
    let failed = false;
    this.ws.addEventListener("error", () => {
      failed = true;
      this.dispatch("error", { error: "websocket: dial failed" });
    });
    this.ws.addEventListener("close", (e) => {
      // As k6 does: a close other than normal / going away is first reported as an error.
      if (!failed && e.code !== 1000 && e.code !== 1001 && e.code !== 1005) {
        this.dispatch("error", { error: `websocket: close ${e.code} ${e.reason}` });
      }
      this.dispatch("close", { code: e.code, reason: e.reason });
      releaseOnce();
    });
  }

  private dispatch(type: string, fields: Omit<K6Event, "type">): void {
    const event: K6Event = { type, ...fields };
    withVu(this.vu, () => {
      const prop = (this as unknown as Record<string, Listener | null>)[`on${type}`];
      prop?.(event);
      for (const l of this.listeners.get(type) ?? []) l(event);
    });
  }

  addEventListener(type: string, listener: Listener): void {
    if (!["open", "message", "close", "error", "ping", "pong"].includes(type)) throw new Error(`k6 adapter: event "${type}" not supported`);
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  send(data: string): void {
    // k6 throws on a send to a socket that is not open (Bun's would drop it silently).
    if (this.ws.readyState !== WebSocket.OPEN) throw new Error("InvalidStateError");
    this.ws.send(data);
  }

  close(code?: number): void {
    this.ws.close(code);
  }

  get readyState(): number {
    return this.ws.readyState;
  }
}

// ---- k6/execution --------------------------------------------------------------------

const execution = {
  get vu() {
    const vu = needVu();
    return { idInTest: vu.id, idInInstance: vu.id };
  },
  get scenario() {
    const vu = needVu();
    return { name: vu.scenario, iterationInTest: vu.iterationInTest };
  },
};

// ---- modules -------------------------------------------------------------------------

export const K6_MODULES: Record<string, Record<string, unknown>> = {
  "k6/websockets": { WebSocket: K6WebSocket },
  // k6 0.50–1.5: the same API under its experimental name (bench/*.k6-legacy.js).
  "k6/experimental/websockets": { WebSocket: K6WebSocket },
  "k6/timers": { setTimeout: k6SetTimeout, clearTimeout: k6ClearTimeout, setInterval: k6SetInterval, clearInterval: k6ClearInterval },
  "k6/metrics": { Counter: metricClass("counter"), Trend: metricClass("trend"), Rate: metricClass("rate"), Gauge: metricClass("gauge") },
  "k6/execution": { default: execution },
};

let registered = false;

function registerModules(): void {
  if (registered) return;
  registered = true;
  Bun.plugin({
    name: "k6-test-adapter",
    setup(build) {
      for (const [specifier, exports] of Object.entries(K6_MODULES)) build.module(specifier, () => ({ exports, loader: "object" }));
    },
  });
}

// ---- runner --------------------------------------------------------------------------

interface ScenarioOptions {
  executor: string;
  exec?: string;
  vus?: number;
  iterations?: number;
  startTime?: string;
  maxDuration?: string;
  rate?: number;
  timeUnit?: string;
  duration?: string;
  preAllocatedVUs?: number;
  maxVUs?: number;
}

export interface ThresholdResult {
  metric: string;
  expression: string;
  value: number;
  ok: boolean;
}

export interface K6Run {
  metrics: MetricStore;
  thresholds: ThresholdResult[];
  /** What the script printed with console.warn (k6 shows these in its log). */
  warnings: string[];
}

function seconds(text: string | undefined, fallback: number): number {
  if (!text) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`k6 adapter: duration "${text}" not understood`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : m[2] === "h" ? n * 3600 : n;
}

function evaluate(store: MetricStore, metric: string, expression: string): ThresholdResult {
  const m = /^\s*([a-z]+(?:\(\d+(?:\.\d+)?\))?)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expression);
  if (!m) throw new Error(`k6 adapter: threshold "${expression}" not understood`);
  const value = store.aggregate(metric, m[1]!);
  const limit = Number(m[3]);
  const ok = { "<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit, "==": value === limit, "!=": value !== limit }[m[2] as "<"];
  return { metric, expression, value, ok };
}

/** Run a k6 script under Bun with the given __ENV; resolves when every scenario is done. */
export async function runK6Script(path: string, env: Record<string, string>): Promise<K6Run> {
  registerModules();
  metrics = new MetricStore();
  (globalThis as Record<string, unknown>).__ENV = env;
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...data: unknown[]) => void warnings.push(data.map(String).join(" "));
  try {
    return { ...(await run(path)), warnings };
  } finally {
    console.warn = warn;
  }
}

async function run(path: string): Promise<Omit<K6Run, "warnings">> {
  const script = (await import(`${path}?run=${Date.now()}`)) as Record<string, unknown> & { options: { scenarios: Record<string, ScenarioOptions>; thresholds?: Record<string, string[]> } };
  let nextVu = 1;
  let iterationInTest = 0;
  const iteration = (scenario: string, fn: () => unknown, vuId: number): Promise<void> =>
    new Promise((resolve) => {
      const vu: Vu = { id: vuId, scenario, iterationInTest: iterationInTest++, handles: 0, onIdle: resolve };
      hold(vu);
      withVu(vu, fn);
      release(vu);
    });

  const scenarios = Object.entries(script.options.scenarios).map(async ([name, s]) => {
    const fn = script[s.exec ?? "default"];
    if (typeof fn !== "function") throw new Error(`k6 adapter: scenario ${name} has no exported function ${s.exec ?? "default"}`);
    await Bun.sleep(seconds(s.startTime, 0) * 1000);
    const limit = seconds(s.maxDuration, 600) * 1000;
    if (s.executor === "per-vu-iterations") {
      const vus = Array.from({ length: s.vus ?? 1 }, () => nextVu++);
      const work = vus.map(async (id) => {
        for (let i = 0; i < (s.iterations ?? 1); i++) await iteration(name, fn as () => unknown, id);
      });
      await Promise.race([Promise.all(work), Bun.sleep(limit)]);
    } else if (s.executor === "constant-arrival-rate") {
      const perSecond = (s.rate ?? 1) / seconds(s.timeUnit, 1);
      const total = Math.round(perSecond * seconds(s.duration, 1));
      const started: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        started.push(iteration(name, fn as () => unknown, nextVu++));
        await Bun.sleep(1000 / perSecond);
      }
      await Promise.race([Promise.all(started), Bun.sleep(limit)]);
    } else {
      throw new Error(`k6 adapter: executor "${s.executor}" not supported`);
    }
  });
  await Promise.all(scenarios);
  const thresholds: ThresholdResult[] = [];
  for (const [metric, expressions] of Object.entries(script.options.thresholds ?? {})) {
    for (const expression of expressions) thresholds.push(evaluate(metrics, metric, expression));
  }
  return { metrics, thresholds };
}

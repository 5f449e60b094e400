// --workers N: this process becomes a supervisor of N server processes that share one
// port (SO_REUSEPORT: the kernel spreads connections) and one chat (through Redis). It
// forwards SIGINT/SIGTERM, restarts a worker that dies unexpectedly (after a delay that
// doubles while it keeps dying young), and exits 0 once every worker has stopped.
import type { Config } from "./config.ts";
import type { Logger } from "./obs/log.ts";

/** A worker that ran this long before dying was healthy: its next restart is quick again. */
const HEALTHY_MS = 30_000;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;

/** Delay before restarting a worker that died after `ranMs`, given the previous delay. */
export function restartDelay(previousMs: number, ranMs: number): number {
  if (ranMs >= HEALTHY_MS || previousMs === 0) return FIRST_DELAY_MS;
  return Math.min(previousMs * 2, MAX_DELAY_MS);
}

export async function superviseWorkers(config: Config, argv: string[], log: Logger): Promise<number> {
  // A compiled executable is its own entry; from source, run this same script again.
  const compiled = Bun.main.startsWith("/$bunfs/");
  const workerArgv = withoutWorkersFlag(argv);
  const command = compiled ? [process.execPath, ...workerArgv] : [process.execPath, Bun.main, ...workerArgv];
  const base = config.nodeId || `node-${crypto.randomUUID().slice(0, 8)}`;
  let stopping = false;
  const children = new Map<number, ReturnType<typeof Bun.spawn>>();
  const delays = new Map<number, number>();

  const start = (index: number) => {
    const startedAt = Date.now();
    const child = Bun.spawn(command, {
      env: { ...process.env, WORKERS: "1", BUNCHAT_WORKER: "1", NODE_ID: `${base}-w${index}` },
      stdio: ["ignore", "inherit", "inherit"],
    });
    children.set(index, child);
    void child.exited.then((code) => {
      if (stopping) return;
      const delay = restartDelay(delays.get(index) ?? 0, Date.now() - startedAt);
      delays.set(index, delay);
      log.error("worker_exited", { worker: index, code, restartInMs: delay });
      setTimeout(() => !stopping && start(index), delay);
    });
  };
  for (let i = 0; i < config.workers; i++) start(i);
  log.info("workers_started", { workers: config.workers, port: config.port });

  return new Promise((resolve) => {
    const stop = async (signal: "SIGINT" | "SIGTERM") => {
      if (stopping) return;
      stopping = true;
      for (const child of children.values()) child.kill(signal);
      await Promise.all([...children.values()].map((c) => c.exited));
      resolve(0);
    };
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
  });
}

/**
 * The command line minus --workers (a worker must not start workers of its own) and
 * --node-id (each worker gets its own id through NODE_ID).
 */
export function withoutWorkersFlag(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--workers" || arg === "--node-id") i++;
    else if (!arg.startsWith("--workers=") && !arg.startsWith("--node-id=")) out.push(arg);
  }
  return out;
}

// Child processes for benchmarks and tests: start a server, learn its URL from its
// "listening" log line, read its CPU time and memory from /proc.
import type { Subprocess } from "bun";
import { readdir } from "node:fs/promises";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

export interface ListeningProcess {
  proc: Subprocess<"ignore", "pipe", "inherit">;
  /** http://127.0.0.1:<port> (https for TLS), from the "listening" line. */
  url: string;
  port: number;
  /** Everything the process printed so far. */
  output: () => string;
}

/**
 * Spawn a server (bunchat or a peer) and wait for its `{"event":"listening","url":…}` line
 * (`listeners` of them: a --workers supervisor's workers each print one).
 */
export async function spawnListening(command: string[], env: Record<string, string> = {}, cwd = ROOT, listeners = 1): Promise<ListeningProcess> {
  const proc = Bun.spawn(command, { cwd, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 15_000 * listeners;
  while (text.split('"listening"').length - 1 < listeners) {
    if (Date.now() > deadline) throw new Error(`${command.join(" ")} did not start`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`${command.join(" ")} exited before listening: ${text}`);
    text += new TextDecoder().decode(value);
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += new TextDecoder().decode(value);
    }
  })();
  const match = /"url":"(https?):\/\/[^"]*:(\d+)"/.exec(text);
  if (!match) throw new Error(`no url in: ${text}`);
  return { proc, url: `${match[1]}://127.0.0.1:${match[2]}`, port: Number(match[2]), output: () => text };
}

/** SIGTERM, then SIGKILL if the process is still there after 5 s. */
export async function stopProcess(proc: Subprocess): Promise<void> {
  proc.kill("SIGTERM");
  const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
  if (!exited) proc.kill("SIGKILL");
}

export async function freePort(): Promise<number> {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Resident memory of a process in KiB, from /proc/<pid>/status. */
export async function rssKb(pid: number): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

/** User + system CPU seconds of a process so far, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Bun.file(`/proc/${pid}/stat`).text();
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** A process and all its descendants (a --workers supervisor and its workers), from /proc. */
export async function processTree(pid: number): Promise<number[]> {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    // Children hang off the thread that spawned them, which need not be the main one.
    const tasks = await readdir(`/proc/${all[i]}/task`).catch(() => [] as string[]);
    for (const task of tasks) {
      const text = await Bun.file(`/proc/${all[i]}/task/${task}/children`).text().catch(() => "");
      for (const child of text.trim().split(/\s+/)) if (child) all.push(Number(child));
    }
  }
  return [...new Set(all)];
}

/** Resident memory of a process tree in KiB (a process that exits meanwhile counts 0). */
export async function treeRssKb(pid: number): Promise<number> {
  let total = 0;
  for (const p of await processTree(pid)) total += await rssKb(p).catch(() => 0);
  return total;
}

/** User + system CPU seconds of a process tree. */
export async function treeCpuSeconds(pid: number): Promise<number> {
  let total = 0;
  for (const p of await processTree(pid)) total += await cpuSeconds(p).catch(() => 0);
  return total;
}

/**
 * Bytes sent over the loopback interface so far (/proc/net/dev, TCP/IP headers included):
 * a run's delta is what crossed the "wire" between server and clients — compressed frames
 * count as sent, which a process's own counters cannot tell for sockets.
 */
export async function loopbackBytes(): Promise<number> {
  const dev = await Bun.file("/proc/net/dev").text().catch(() => "");
  const line = dev.split("\n").find((l) => l.trim().startsWith("lo:"));
  // Receive columns come first (8 of them), then transmit bytes.
  const fields = line?.split(":")[1]?.trim().split(/\s+/) ?? [];
  return Number(fields[8] ?? 0);
}

// Run bunchat as a child process (source or compiled executable) and learn its port from
// the "listening" log line. For crash, signal and executable tests.
import type { Subprocess } from "bun";

export interface ChildServer {
  proc: Subprocess<"ignore", "pipe", "inherit">;
  port: number;
  output: () => string;
}

export async function spawnServer(command: string[], env: Record<string, string> = {}, cwd?: string): Promise<ChildServer> {
  const proc = Bun.spawn(command, { cwd, stdout: "pipe", stderr: "inherit", env: { ...process.env, LOG_LEVEL: "info", ...env } });
  let text = "";
  const reader = proc.stdout.getReader();
  while (!text.includes('"listening"')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited before listening: ${text}`);
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
  const match = /"url":"https?:\/\/[^"]*:(\d+)"/.exec(text);
  if (!match) throw new Error(`no port in: ${text}`);
  return { proc, port: Number(match[1]), output: () => text };
}

/** Resident memory of a process in KiB, from /proc (Linux). */
export async function rssKb(pid: number): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

// Run bunchat as a child process (source or compiled executable) and learn its port from
// the "listening" log line. For crash, signal, cluster and executable tests.
import { spawnListening, type ListeningProcess } from "../../bench/lib/process.ts";

export { rssKb } from "../../bench/lib/process.ts";
export type ChildServer = ListeningProcess;

export function spawnServer(command: string[], env: Record<string, string> = {}, cwd?: string): Promise<ChildServer> {
  // JSON lines: the "listening" line is read by machine, whatever the caller's LOG_FORMAT.
  return spawnListening(command, { LOG_LEVEL: "info", LOG_FORMAT: "json", ...env }, cwd);
}

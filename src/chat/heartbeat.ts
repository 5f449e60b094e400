// Zombie cleanup. Bun's idleTimeout alone never reaps a frozen client in a busy room,
// because every frame sent to it re-arms the timer. So every interval we ping each
// socket and terminate the ones that did not answer the previous ping (pong, or any
// frame, sets `alive`). A frozen client is gone within about two intervals.
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { Session } from "./session.ts";

export function startHeartbeat(intervalSeconds: number, sessions: () => Iterable<Session>, metrics: Metrics, log: Logger): () => void {
  if (intervalSeconds <= 0) return () => {};
  const timer = setInterval(() => {
    for (const s of sessions()) {
      const ws = s.ws;
      if (!ws) continue;
      if (!s.alive) {
        metrics.zombiesTerminated.inc();
        log.info("zombie_terminated", { user: s.name, ip: s.ip });
        ws.terminate();
        continue;
      }
      s.alive = false;
      ws.ping();
    }
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

// Zombie cleanup. Bun's idleTimeout alone never reaps a frozen client in a busy room,
// because every frame sent to it re-arms the timer. So every interval we ping each
// socket and terminate the ones that did not answer the previous ping (pong, or any
// frame, sets `alive`). A frozen client is gone within about two intervals.
// The same sweep closes connections whose auth token has expired (1008).
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { Session } from "./session.ts";

export function startHeartbeat(intervalSeconds: number, sessions: () => Iterable<Session>, metrics: Metrics, log: Logger): () => void {
  if (intervalSeconds <= 0) return () => {};
  const timer = setInterval(() => {
    const nowSeconds = Date.now() / 1000;
    for (const s of sessions()) {
      const ws = s.ws;
      if (!ws) continue;
      if (s.token && s.token.expires > 0 && nowSeconds >= s.token.expires) {
        log.info("token_expired_closed", { user: s.name });
        ws.close(1008, "token expired");
        continue;
      }
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

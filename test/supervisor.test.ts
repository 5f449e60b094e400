// --workers: a worker that keeps dying is restarted after a delay that doubles, not in a
// tight loop (issue #10, item 10).
import { describe, expect, test } from "bun:test";
import { restartDelay } from "../src/supervisor.ts";
import { freePort } from "./helpers/redis.ts";

describe("worker restarts", () => {
  test("the delay doubles while a worker dies young, and resets after a healthy run", () => {
    let delay = 0;
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) seen.push((delay = restartDelay(delay, 200)));
    expect(seen).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(restartDelay(30000, 60_000)).toBe(500);
  });

  test("a supervisor whose workers cannot start backs off and still stops cleanly", async () => {
    // Nothing listens on this port: every worker exits at once with a clear error.
    const redisUrl = `redis://127.0.0.1:${await freePort()}`;
    const supervisor = Bun.spawn(["bun", "src/server.ts", "--workers", "2", "--port", String(await freePort()), "--host", "127.0.0.1"], {
      env: { ...process.env, REDIS_URL: redisUrl, LOG_LEVEL: "info" },
      stdout: "pipe",
      stderr: "ignore",
    });
    const reader = supervisor.stdout.getReader();
    let text = "";
    const restarts = () => [...text.matchAll(/"event":"worker_exited","worker":0,"code":\d+,"restartInMs":(\d+)/g)].map((m) => Number(m[1]));
    const deadline = Date.now() + 20_000;
    while (restarts().length < 3 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    supervisor.kill("SIGTERM");
    expect(await supervisor.exited).toBe(0);
    expect(restarts().slice(0, 3)).toEqual([500, 1000, 2000]);
  }, 30_000);
});

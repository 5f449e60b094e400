// A real redis-server on a free loopback port, persistence off: for the cluster benchmark
// target and the cluster tests.
import type { Subprocess } from "bun";
import { freePort } from "./process.ts";

export class RedisServer {
  private proc: Subprocess | null = null;
  private constructor(readonly port: number) {}

  static async start(): Promise<RedisServer> {
    if (!Bun.which("redis-server")) throw new Error("redis-server is not installed: apt-get install redis-server (.ci/run does this)");
    const server = new RedisServer(await freePort());
    await server.boot();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async boot(): Promise<void> {
    this.proc = Bun.spawn(["redis-server", "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"], { stdout: "ignore", stderr: "inherit" });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        (await Bun.connect({ hostname: "127.0.0.1", port: this.port, socket: { data() {} } })).end();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error("redis-server did not start");
        await Bun.sleep(20);
      }
    }
  }

  async stop(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    this.proc = null;
  }

  async restart(downForMs: number): Promise<void> {
    await this.stop();
    await Bun.sleep(downForMs);
    await this.boot();
  }
}

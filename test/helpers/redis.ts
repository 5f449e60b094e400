// A real redis-server per test file: its own free port, persistence off, stopped after.
import type { Subprocess } from "bun";

export async function freePort(): Promise<number> {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

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
        const conn = await Bun.connect({ hostname: "127.0.0.1", port: this.port, socket: { data() {} } });
        conn.end();
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

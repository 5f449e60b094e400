// Servers and clients a test file starts, stopped and closed after each test.
import { afterEach } from "bun:test";
import type { ChatServer } from "../../src/app.ts";
import type { Config } from "../../src/config.ts";
import { TestClient } from "./client.ts";
import { startServer } from "./server.ts";

export interface ServerFixture {
  /** Start a server on port 0 with the file's defaults plus `overrides`. */
  start(overrides?: Partial<Config>): Promise<ChatServer>;
  /** Clean up a server made some other way (e.g. with a custom logger). */
  adopt(server: ChatServer): ChatServer;
  /** The server started (or adopted) last. */
  readonly server: ChatServer;
  /** Connect to the latest server and wait for welcome. */
  connect(query?: Record<string, string | number>, options?: Parameters<typeof TestClient.open>[1]): Promise<TestClient>;
  /** Connect to a given server and wait for welcome. */
  connectTo(server: ChatServer, query?: Record<string, string | number>, options?: Parameters<typeof TestClient.open>[1]): Promise<TestClient>;
  /** Clients closed after each test (push any opened by hand). */
  readonly clients: TestClient[];
}

export function serverFixture(defaults: Partial<Config> = {}): ServerFixture {
  const servers: ChatServer[] = [];
  const clients: TestClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    // stop() is idempotent, so servers a test already stopped are fine here.
    for (const s of servers.splice(0)) await s.stop();
  });
  const fixture: ServerFixture = {
    async start(overrides = {}) {
      return fixture.adopt(await startServer({ ...defaults, ...overrides }));
    },
    adopt(server) {
      servers.push(server);
      return server;
    },
    get server() {
      const latest = servers.at(-1);
      if (!latest) throw new Error("no server started in this test");
      return latest;
    },
    connect(query = {}, options) {
      return fixture.connectTo(fixture.server, query, options);
    },
    async connectTo(server, query = {}, options) {
      const c = await TestClient.connect(server.wsUrl, query, options);
      clients.push(c);
      return c;
    },
    clients,
  };
  return fixture;
}

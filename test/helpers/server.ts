// Start a real bunchat server in-process on port 0 and stop it after the test.
import { createServer, type ChatServer } from "../../src/app.ts";
import { testConfig, type Config } from "../../src/config.ts";

export async function startServer(overrides: Partial<Config> = {}): Promise<ChatServer> {
  return createServer(testConfig(overrides));
}

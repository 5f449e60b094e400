import { describe, expect, test } from "bun:test";
import { ConfigError, helpText, OPTIONS, parseConfig } from "../src/config.ts";

describe("configuration", () => {
  test("defaults match the documented ones", () => {
    const { config } = parseConfig([], {});
    expect(config.port).toBe(3000);
    expect(config.maxConnections).toBe(10000);
    expect(config.maxConnectionsPerIp).toBe(0);
    expect(config.pingInterval).toBe(30);
    expect(config.maxPayload).toBe(16 * 1024);
    expect(config.historyDb).toBe("./data/bunchat.db");
    expect(config.logLevel).toBe("info");
  });

  test("flags win over environment variables", () => {
    const { config } = parseConfig(["--port", "4001", "--rate-limit=5"], { PORT: "4000", RATE_LIMIT: "9", RATE_BURST: "7" });
    expect(config.port).toBe(4001);
    expect(config.rateLimit).toBe(5);
    expect(config.rateBurst).toBe(7);
  });

  test.each([
    [["--port", "abc"], {}, /--port \/ PORT.*not a whole number/],
    [["--port", "70000"], {}, /--port \/ PORT.*outside/],
    [[], { MAX_CONNECTIONS: "0" }, /MAX_CONNECTIONS.*outside/],
    [[], { LOG_LEVEL: "loud" }, /LOG_LEVEL.*not one of/],
    [["--nope"], {}, /nope/],
    [["--workers", "2"], {}, /needs --redis-url/],
    [["--tls-cert", "a.pem"], {}, /tls-key/],
    [[], { REDIS_URL: "http://x" }, /REDIS_URL/],
  ] as const)("invalid %p %p names the option", (argv, env, message) => {
    expect(() => parseConfig([...argv], env)).toThrow(ConfigError);
    expect(() => parseConfig([...argv], env)).toThrow(message);
  });

  test("--help lists every option with its variable", () => {
    const help = helpText();
    for (const o of OPTIONS) {
      expect(help).toContain(`--${o.flag}`);
      expect(help).toContain(o.env);
    }
  });

  test("the entry point prints one line and exits 2 on a bad value", async () => {
    const proc = Bun.spawn(["bun", "run", "src/server.ts", "--max-payload", "lots"], { stdout: "pipe", stderr: "pipe" });
    const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(2);
    expect(err.trim().split("\n")).toHaveLength(1);
    expect(err).toContain("--max-payload / MAX_PAYLOAD");
  });

  test("a port in use gives a clear message, not a stack trace", async () => {
    const holder = Bun.serve({ port: 0, hostname: "127.0.0.1", reusePort: false, fetch: () => new Response("busy") });
    try {
      const proc = Bun.spawn(["bun", "run", "src/server.ts", "--host", "127.0.0.1", "--port", String(holder.port), "--history-db", "off"], { stdout: "pipe", stderr: "pipe" });
      const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      expect(code).toBe(2);
      expect(err.trim()).toBe(`bunchat: port ${holder.port} is already in use on 127.0.0.1; choose another with --port / PORT`);
    } finally {
      holder.stop(true);
    }
  });
});

describe("documentation", () => {
  test("the README's options table lists every option with its variable and default", async () => {
    const readme = await Bun.file(new URL("../README.md", import.meta.url)).text();
    for (const o of OPTIONS) {
      const row = readme.split("\n").find((line) => line.startsWith(`| \`--${o.flag}\` |`));
      expect({ flag: o.flag, row: row !== undefined }).toEqual({ flag: o.flag, row: true });
      expect(row).toContain(`\`${o.env}\``);
      if (o.default !== "") expect(row).toContain(`\`${o.default}\``);
    }
  });
});

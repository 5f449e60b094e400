// The command line at its edges: --version, usage that names how it was started, token's
// own --help and room checks, one-line answers to unknown options with the closest one,
// and logs a person can read at a terminal (JSON lines everywhere else).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { closestFlag, helpText, OPTIONS, VERSION } from "../src/config.ts";
import { createLogger, resolveLogFormat } from "../src/obs/log.ts";

const ROOT = join(import.meta.dir, "..");

async function bunchat(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(["bun", "run", "src/server.ts", ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
}

describe("--version and usage", () => {
  test("--version prints package.json's version", async () => {
    const { version } = (await Bun.file(join(ROOT, "package.json")).json()) as { version: string };
    expect(VERSION).toBe(version);
    for (const flag of ["--version", "-v"]) expect(await bunchat([flag])).toMatchObject({ code: 0, stdout: `bunchat ${version}\n`, stderr: "" });
  });

  test("usage names the way it was started: bun run src/server.ts from source", async () => {
    const { code, stdout } = await bunchat(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("Usage:\n  bun run src/server.ts [options]\n  bun run src/server.ts token <name>");
    expect(helpText("bunchat")).toContain("Usage:\n  bunchat [options]\n  bunchat token <name>");
  });
});

describe("unknown options", () => {
  test.each([
    [["--prot", "8080"], "bunchat: unknown option --prot; did you mean --port?"],
    [["--max-conection=5"], "bunchat: unknown option --max-conection; did you mean --max-connections?"],
    [["--RATE_LIMIT", "0"], "bunchat: unknown option --RATE_LIMIT; did you mean --rate-limit?"],
    [["--frobnicate"], "bunchat: unknown option --frobnicate (--help lists the options)"],
    [["--port"], "bunchat: --port needs a value"],
    [["token", "bob", "--tll", "2h"], "bunchat: token: unknown option --tll; did you mean --ttl?"],
  ])("%p gets one line and exit 2", async (args, line) => {
    const { code, stdout, stderr } = await bunchat(args);
    expect({ code, stdout, stderr }).toEqual({ code: 2, stdout: "", stderr: `${line}\n` });
  });

  test("the closest flag: typos, swapped letters, prefixes; nothing for a stranger", () => {
    const flags = OPTIONS.map((o) => o.flag);
    expect(closestFlag("--prot", flags)).toBe("port");
    expect(closestFlag("--histroy-db", flags)).toBe("history-db");
    expect(closestFlag("--idle", flags)).toBe("idle-timeout");
    expect(closestFlag("--tls", flags)).toBe("tls-cert");
    expect(closestFlag("--banana", flags)).toBeNull();
    expect(closestFlag("-x", flags)).toBeNull();
  });
});

describe("token", () => {
  const secret = { AUTH_SECRET: "cli-test-secret" };
  const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { sub: string; exp: number; iat: number; rooms?: string[] };

  test("token --help explains it, with the default lifetime", async () => {
    const { code, stdout } = await bunchat(["token", "--help"]);
    expect(code).toBe(0);
    expect(stdout).toStartWith("Usage: bun run src/server.ts token <name> [--ttl 1h] [--rooms a,b]");
    expect(stdout).toContain("[default: 1h]");
  });

  test("a token lives 1 hour by default and names the rooms given", async () => {
    const { code, stdout } = await bunchat(["token", "bob", "--rooms", "dev, Lobby"], secret);
    expect(code).toBe(0);
    const claims = claimsOf(stdout.trim());
    expect(claims).toMatchObject({ sub: "bob", rooms: ["dev", "lobby"] });
    expect(claims.exp - claims.iat).toBe(3600);
  });

  test.each([
    ["Bad Room", "bunchat: token: --rooms \"Bad Room\" can never be joined: room names use letters, digits, '_', '-' and '.'"],
    ["dev,", null],
    [" , ", 'bunchat: token: --rooms " , " names no room'],
  ])("--rooms %p", async (rooms, line) => {
    const { code, stderr } = await bunchat(["token", "bob", "--rooms", rooms], secret);
    if (line === null) expect(code).toBe(0);
    else expect({ code, stderr }).toEqual({ code: 2, stderr: `${line}\n` });
  });
});

describe("log format", () => {
  test("auto is pretty at a terminal and JSON elsewhere; LOG_FORMAT forces either", () => {
    expect(resolveLogFormat("auto", true)).toBe("pretty");
    expect(resolveLogFormat("auto", false)).toBe("json");
    expect(resolveLogFormat(undefined, false)).toBe("json");
    expect(resolveLogFormat("json", true)).toBe("json");
    expect(resolveLogFormat("pretty", false)).toBe("pretty");
  });

  test("a pretty line: time, level, node, event, then key=value, strings with spaces quoted", () => {
    const lines: string[] = [];
    const log = createLogger("info", "a", (l) => lines.push(l), "pretty");
    log.debug("hidden");
    log.warn("redis_down", { connection: "commands", error: "connection refused", downForMs: 12, gone: undefined });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  \[a\] redis_down connection=commands error="connection refused" downForMs=12\n$/);
  });

  test("with a writer of its own (a test, a file) a logger writes JSON lines unless told otherwise", () => {
    const lines: string[] = [];
    createLogger("info", undefined, (l) => lines.push(l)).info("listening", { url: "http://x" });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", event: "listening", url: "http://x" });
  });

  test("LOG_FORMAT=pretty on the server: readable lines, no colour codes into a pipe", async () => {
    const proc = Bun.spawn(["bun", "src/server.ts", "--port", "0", "--host", "127.0.0.1", "--history-db", "off"], { cwd: ROOT, env: { ...process.env, LOG_FORMAT: "pretty" }, stdout: "pipe", stderr: "inherit" });
    const reader = proc.stdout.getReader();
    const { value } = await reader.read();
    proc.kill("SIGTERM");
    await proc.exited;
    const first = new TextDecoder().decode(value).split("\n")[0]!;
    expect(first).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  listening url=http:\/\/127\.0\.0\.1:\d+ history=off maxConnections=10000$/);
  });

  test("a reader that goes away (`| head`, a supervisor that stopped first) never crashes the process", async () => {
    // Each write after the pipe closed fails with EPIPE; before, that error ended the process.
    const script = `import { createLogger } from "./src/obs/log.ts"; const log = createLogger("info"); for (let i = 0; i < 50; i++) { log.info("line", { i }); await Bun.sleep(5); } console.error("survived");`;
    const proc = Bun.spawn(["bash", "-c", `"${process.execPath}" -e '${script}' | head -c 1 > /dev/null; echo "rc=\${PIPESTATUS[0]}" >&2`], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
    const err = await new Response(proc.stderr).text();
    await proc.exited;
    expect(err).toContain("survived");
    expect(err).toContain("rc=0");
    expect(err).not.toContain("EPIPE");
  });

  test.skipIf(!Bun.which("script"))("at a terminal the server's lines are coloured, not JSON", async () => {
    // `script` gives the server a pseudo-terminal for stdout, as a person's shell does.
    const command = `timeout -s INT 2 ${process.execPath} src/server.ts --port 0 --host 127.0.0.1 --history-db off`;
    const env: Record<string, string | undefined> = { ...process.env };
    delete env.LOG_FORMAT;
    delete env.NO_COLOR;
    const proc = Bun.spawn(["script", "-qec", command, "/dev/null"], { cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    await proc.exited;
    const listening = out.split(/\r?\n/).find((l) => l.includes("listening"))!;
    expect(listening).toContain("\x1b[36mINFO ");
    expect(listening).not.toContain('"event"');
  });
});

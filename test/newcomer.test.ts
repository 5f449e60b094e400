// The README's promise, tested the way a newcomer meets it: a clean clone of the commit
// under test, on a machine with no redis-server and no system Chromium (hidden from PATH,
// and apt-get with them so nothing can be installed), passes `bun install && bun test`.
// The Redis suites are skipped with one line, and the browser suite runs on the Chromium
// that npm ships. The nested run sets BUNCHAT_NESTED_RUN=1, so this file skips itself
// there instead of cloning again.
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const NESTED = process.env.BUNCHAT_NESTED_RUN === "1";
// Without git history there is no commit to clone (a tarball, say): nothing to test.
const CHECKOUT = existsSync(join(ROOT, ".git")) && Bun.which("git") !== null;
const HIDDEN = new Set(["redis-server", "chromium", "chromium-browser", "apt-get", "apt"]);

/** A folder of links to every program on PATH but the hidden ones: the newcomer's PATH. */
function pathWithout(hidden: Set<string>, into: string): string {
  mkdirSync(into, { recursive: true });
  const linked = new Set<string>();
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || !existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      // The first of a name on PATH wins, as in a shell.
      if (hidden.has(name) || linked.has(name)) continue;
      linked.add(name);
      symlinkSync(join(dir, name), join(into, name));
    }
  }
  return into;
}

function git(...args: string[]): string {
  const run = Bun.spawnSync(["git", ...args], { stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${run.stderr.toString()}`);
  return run.stdout.toString().trim();
}

test.skipIf(NESTED || !CHECKOUT)("a clean clone passes `bun install && bun test` without redis-server or a system Chromium", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bunchat-newcomer-"));
  try {
    const clone = join(dir, "bunchat");
    git("clone", "--quiet", "--no-checkout", ROOT, clone);
    git("-C", clone, "checkout", "--quiet", "--detach", git("-C", ROOT, "rev-parse", "HEAD"));
    const env: Record<string, string | undefined> = { ...process.env, PATH: pathWithout(HIDDEN, join(dir, "bin")), BUNCHAT_NESTED_RUN: "1" };
    delete env.CI;
    delete env.TEST_BROWSER;
    for (const name of HIDDEN) expect({ name, found: Bun.which(name, { PATH: env.PATH }) }).toEqual({ name, found: null });

    const run = async (command: string[]) => {
      const proc = Bun.spawn(command, { cwd: clone, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      return { code, output: out + err };
    };
    const install = await run([process.execPath, "install"]);
    expect({ step: "bun install", code: install.code, tail: install.code === 0 ? "" : install.output.slice(-2000) }).toEqual({ step: "bun install", code: 0, tail: "" });
    const suite = await run([process.execPath, "test"]);
    const failures = suite.output.split("\n").filter((line) => line.startsWith("(fail)") || /^error:/.test(line));
    expect({ step: "bun test", code: suite.code, failures }).toEqual({ step: "bun test", code: 0, failures: [] });
    expect(suite.output).toMatch(/^ *0 fail$/m);
    // One line each for what the setup found, and the suites ran as it said.
    expect(suite.output).toContain("test setup: redis-server is not installed, so the Redis suites are skipped: run `apt-get install redis-server`");
    expect(suite.output).toMatch(/^test setup: browser: \S+ \(@sparticuz\/chromium [\d.]+ from npm\)$/m);
    expect(suite.output).toContain("(pass) the web client > two pages chat in a room");
    expect(suite.output).toContain("(skip) three nodes, one chat");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 540_000);

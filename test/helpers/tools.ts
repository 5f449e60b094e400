// The programs outside Bun that some suites need: redis-server (cluster tests, the
// two-node benchmark target) and a Chromium (browser test). `bun install && bun test`
// must pass on a machine that has only Bun, so each is found or set up here, once per
// run, with one line saying what happened:
//   redis-server  on PATH; else, as root with apt-get, Debian's package is installed;
//                 else the Redis suites are skipped, naming the command to run.
//   Chromium      the system's (chromium on PATH); else the one the npm dev dependency
//                 @sparticuz/chromium ships (see npm-chromium.ts).
// Under CI=true a tool that is still missing fails the run: CI must never pass by skipping.
import { npmChromium, type BrowserLaunch } from "./npm-chromium.ts";

export type { BrowserLaunch } from "./npm-chromium.ts";

const inCi = (): boolean => ["1", "true", "yes"].includes((process.env.CI ?? "").toLowerCase());

/** One line on stderr, beside bun test's own report. */
function say(line: string): void {
  process.stderr.write(`test setup: ${line}\n`);
}

function missing(tool: string, remedy: string): false {
  if (inCi()) throw new Error(`${tool} is missing and CI=true makes a missing tool a failure, not a skip: ${remedy}`);
  return false;
}

let redis: Promise<boolean> | null = null;

/**
 * Whether redis-server can be started (installing Debian's package first when we may).
 * Memoized: bun test runs every file in one process, so the install and the line happen once.
 */
export function redisAvailable(): Promise<boolean> {
  redis ??= findOrInstallRedis();
  return redis;
}

async function findOrInstallRedis(): Promise<boolean> {
  if (Bun.which("redis-server")) return true;
  const remedy = "run `apt-get install redis-server` (as root), then `bun test` again";
  if (process.getuid?.() !== 0 || !Bun.which("apt-get")) {
    say(`redis-server is not installed, so the Redis suites are skipped: ${remedy}`);
    return missing("redis-server", remedy);
  }
  say("redis-server is not installed: installing Debian's redis-server package with apt-get (once)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => Bun.spawn(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"], { env, stdout: "pipe", stderr: "pipe" });
  let proc = install();
  if ((await proc.exited) !== 0) {
    // A fresh machine may have no package lists yet.
    await Bun.spawn(["apt-get", "update", "-qq"], { env, stdout: "ignore", stderr: "ignore" }).exited;
    proc = install();
  }
  if ((await proc.exited) === 0 && Bun.which("redis-server")) return true;
  const why = (await new Response(proc.stderr).text()).trim().split("\n").at(-1) ?? "";
  say(`apt-get could not install redis-server (${why}), so the Redis suites are skipped: ${remedy}`);
  return missing("redis-server", remedy);
}

let browser: Promise<BrowserLaunch | null> | null = null;

/**
 * How to launch Chromium with playwright-core, or null (the browser suite is skipped).
 * TEST_BROWSER=npm picks the npm-shipped browser even where a system one exists.
 */
export function chromiumForTests(): Promise<BrowserLaunch | null> {
  browser ??= findChromium();
  return browser;
}

async function findChromium(): Promise<BrowserLaunch | null> {
  const system = process.env.TEST_BROWSER === "npm" ? null : (Bun.which("chromium") ?? Bun.which("chromium-browser"));
  if (system) {
    say(`browser: ${system} (the system's Chromium)`);
    return { executablePath: system, env: {}, source: "system" };
  }
  const shipped = await npmChromium();
  if (shipped) {
    say(`browser: ${shipped.executablePath} (${shipped.source})`);
    return shipped;
  }
  const remedy = "run `bun install` (it brings @sparticuz/chromium) or `apt-get install chromium`";
  say(`no Chromium found, so the browser suite is skipped: ${remedy}`);
  return missing("Chromium", remedy) || null;
}

// The package as a user gets it: `npm pack` (which builds the client), the tarball
// installed into an empty project next to `ws` from the registry, and docs/CLIENT.md's
// examples run exactly as written there (only the port changed): the Node one on this
// machine's Node (20), the Bun one on Bun, the Deno one on Deno (from the npm registry's
// `deno` package), the browser one bundled and opened in Chromium.
// One pack and one install serve every test, to keep the suite's time down.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import type { ChatServer } from "../src/app.ts";
import { eventually, TestClient } from "./helpers/client.ts";
import { startServer } from "./helpers/server.ts";
import { chromiumForTests } from "./helpers/tools.ts";

const ROOT = join(import.meta.dir, "..");
const NPM = Bun.which("npm");
const NODE = Bun.which("node");
const dir = mkdtempSync(join(tmpdir(), "bunchat-pack-"));
const app = join(dir, "app");
let server: ChatServer;
let watcher: TestClient;

/** The fenced code blocks of docs/CLIENT.md whose info string is `<lang> <tag>`. */
function examples(tag: string): string[] {
  const doc = readFileSync(join(ROOT, "docs", "CLIENT.md"), "utf8");
  const blocks: string[] = [];
  for (const m of doc.matchAll(/^```(\w+) (\w+)\n([\s\S]*?)^```$/gm)) if (m[2] === tag) blocks.push(m[3]!);
  if (blocks.length === 0) throw new Error(`docs/CLIENT.md has no \`\`\`… ${tag} example`);
  return blocks;
}

/** An example as written, pointed at the test's server instead of port 3000. */
const pointed = (code: string) => code.replaceAll("ws://localhost:3000", `ws://127.0.0.1:${server.port}`);

async function run(command: string[], cwd: string): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(command, { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, out: out + err };
}

beforeAll(async () => {
  if (!NPM) return;
  server = await startServer({ historyDb: ":memory:", rateLimit: 0 });
  watcher = await TestClient.connect(server.wsUrl, { name: "watcher" });
  const pack = await run([NPM, "pack", "--silent", "--pack-destination", dir], ROOT);
  if (pack.code !== 0) throw new Error(`npm pack failed: ${pack.out}`);
  const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz"))!);
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  // Deno comes as an npm package too (its binary in an optional dependency per platform).
  const install = await run([NPM, "install", "--no-audit", "--no-fund", "--loglevel=error", tarball, "ws@8", "deno@2"], app);
  if (install.code !== 0) throw new Error(`npm install failed: ${install.out}`);
}, 120_000);

afterAll(async () => {
  watcher?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!NPM)("the packed bunchat/client", () => {
  test("the tarball holds the client and its types, and no runtime dependency", () => {
    const installed = JSON.parse(readFileSync(join(app, "node_modules", "bunchat", "package.json"), "utf8")) as Record<string, unknown>;
    expect(installed.private).toBeUndefined();
    expect(installed.dependencies).toBeUndefined();
    expect(installed.exports).toMatchObject({ "./client": { types: "./dist/types/client/index.d.ts", import: "./dist/client/index.js" } });
    const bundle = readFileSync(join(app, "node_modules", "bunchat", "dist", "client", "index.js"), "utf8");
    expect(bundle).toContain("export {");
    expect(bundle).not.toMatch(/^import\b|\brequire\(|\bimport\(/m); // one self-contained module
  });

  test.skipIf(!NODE)("docs/CLIENT.md's Node example runs on Node 20 with ws", async () => {
    const [code] = examples("node");
    writeFileSync(join(app, "hello.mjs"), pointed(code!));
    const result = await run([NODE!, "hello.mjs"], app);
    expect(result).toMatchObject({ code: 0, out: expect.stringMatching(/stored as message \d+\nrefused: no_such_user\na page of \d+ older messages, from id \d+\n/) });
    await watcher.next("message", (m) => m.from === "node-bot" && m.text === "hello from Node");
  });

  test("docs/CLIENT.md's Bun example runs on Bun", async () => {
    const [code] = examples("bun");
    writeFileSync(join(app, "hello.ts"), pointed(code!));
    const result = await run([process.execPath, "hello.ts"], app);
    expect(result).toMatchObject({ code: 0, out: expect.stringMatching(/^in #lobby as bun-bot, \d+ online\n(.*\n)*stored as message \d+\n/m) });
    await watcher.next("message", (m) => m.from === "bun-bot" && m.text === "hello from Bun");
  });

  test("docs/CLIENT.md's Deno example runs on Deno", async () => {
    const deno = join(app, "node_modules", ".bin", "deno");
    const [code] = examples("deno");
    writeFileSync(join(app, "hello-deno.ts"), pointed(code!));
    const result = await run([deno, "run", "--allow-net", "hello-deno.ts"], app);
    expect(result).toMatchObject({ code: 0, out: expect.stringMatching(/stored as message \d+\n/) });
    await watcher.next("message", (m) => m.from === "deno-bot" && m.text === "hello from Deno");
  }, 60_000);

  test("the types check in a strict TypeScript project with no DOM library", async () => {
    writeFileSync(join(app, "typed.ts"), [
      'import { connect, ChatError, type MessageFrame, type ServerFrame } from "bunchat/client";',
      'import WebSocket from "ws";',
      'const chat = connect("ws://localhost:3000", { name: "typed", WebSocket });',
      'chat.on("message", (m: MessageFrame, replay: boolean) => void [m.id, m.text, replay]);',
      'chat.on("frame", (f: ServerFrame) => { if (f.type === "private") void f.box; });',
      'chat.send("hi").then((m) => m.id, (e: unknown) => e instanceof ChatError && e.code === "rate_limited");',
      "",
    ].join("\n"));
    writeFileSync(join(app, "ws.d.ts"), 'declare module "ws" { const WebSocket: new (url: string, protocols?: string[]) => object; export default WebSocket; }\n');
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", lib: ["es2022"], types: [], noEmit: true, skipLibCheck: false },
      files: ["typed.ts", "ws.d.ts"],
    }));
    const result = await run([join(ROOT, "node_modules", ".bin", "tsc"), "-p", "."], app);
    expect(result).toEqual({ code: 0, out: "" });
  });
});

const CHROMIUM = await chromiumForTests();

describe.skipIf(!NPM || !CHROMIUM)("docs/CLIENT.md's browser example", () => {
  test("bundled with bun build, it chats from a page", async () => {
    const [script, html] = examples("browser");
    writeFileSync(join(app, "app.ts"), pointed(script!));
    mkdirSync(join(app, "public"), { recursive: true });
    writeFileSync(join(app, "public", "index.html"), html!);
    const build = await run([process.execPath, "build", "app.ts", "--outdir", "public"], app);
    expect(build.code).toBe(0);
    const files = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        const file = Bun.file(join(app, "public", new URL(req.url).pathname.slice(1) || "index.html"));
        return (await file.exists()) ? new Response(file) : new Response("not found", { status: 404 });
      },
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM!.executablePath, env: { ...process.env, ...CHROMIUM!.env }, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${files.port}/`);
      await page.locator("#log li", { hasText: /^stored as message \d+$/ }).waitFor();
      const sent = await watcher.next("message", (m) => m.text === "hello from a browser");
      expect(sent.from as string).toStartWith("guest-");
      // A reload is the same person, under the same name.
      await page.reload();
      await page.locator("#log li", { hasText: /^stored as message \d+$/ }).waitFor();
      const again = await watcher.next("message", (m) => m.text === "hello from a browser");
      expect(again.from).toBe(sent.from);
      await eventually(async () => (await page.title()) === "online");
    } finally {
      await browser.close();
      void files.stop(true);
    }
  });
});

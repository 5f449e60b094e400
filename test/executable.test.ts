// `bun run build` makes one executable holding the server and the page; it must serve
// the page and chat with no source tree beside it, and call itself by its own name.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VERSION } from "../src/config.ts";
import { eventually, TestClient } from "./helpers/client.ts";
import { spawnServer, type ChildServer } from "./helpers/spawn-server.ts";

const dir = mkdtempSync(join(tmpdir(), "bunchat-exe-"));
let child: ChildServer | null = null;

afterAll(() => {
  child?.proc.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

test("the single executable serves the page and chats", async () => {
  const outfile = join(dir, "bunchat");
  const build = Bun.spawnSync(["bun", "run", "build", "--outfile", outfile], { stdout: "pipe", stderr: "pipe" });
  expect(build.exitCode).toBe(0);
  // Its usage names it as people run it, and it knows its version.
  const run = (...args: string[]) => Bun.spawnSync([outfile, ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" }).stdout.toString();
  expect(run("--help")).toContain("Usage:\n  bunchat [options]\n  bunchat token <name>");
  expect(run("--version")).toBe(`bunchat ${VERSION}\n`);
  expect(run("token", "--help")).toStartWith("Usage: bunchat token <name>");
  expect(run("chat", "--help")).toStartWith("Usage: bunchat chat <url>");
  // Run it from an empty folder: nothing but the binary.
  child = await spawnServer([outfile, "--host", "127.0.0.1", "--port", "0"], {}, dir);
  expect(await Bun.file(join(dir, "data", "bunchat.db")).exists()).toBe(true);
  const base = `http://127.0.0.1:${child.port}`;
  const html = await (await fetch(`${base}/`)).text();
  expect(html).toContain('id="messages"');
  const script = /<script[^>]+src="([^"]+)"/.exec(html)![1]!;
  const js = await fetch(new URL(script, base));
  expect(js.status).toBe(200);
  expect(await js.text()).toContain("bunchat.people");
  const icon = await fetch(`${base}/favicon.ico`);
  expect([icon.status, icon.headers.get("content-type")]).toEqual([200, "image/svg+xml"]);
  expect(await icon.text()).toStartWith("<svg");
  const alice = await TestClient.connect(`ws://127.0.0.1:${child.port}/ws`, { name: "alice" });
  const bob = await TestClient.connect(`ws://127.0.0.1:${child.port}/ws`, { name: "bob" });
  alice.send("from the binary");
  expect(await bob.next("message")).toMatchObject({ from: "alice", text: "from the binary" });
  // The history's write-ahead log is copied back by the checkpoint worker, inside the binary too.
  await eventually(async () => /^bunchat_history_checkpoints_total [1-9]/m.test(await (await fetch(`${base}/metrics`)).text()), 5000, "a background checkpoint");
  // `bunchat chat`: the terminal client in the same binary, fed by a pipe.
  const terminal = Bun.spawn([outfile, "chat", `ws://127.0.0.1:${child.port}`, "--name", "carol"], { cwd: dir, stdin: new Blob(["from the terminal client\n"]), stdout: "pipe", stderr: "pipe" });
  expect(await bob.next("message", (m) => m.from === "carol")).toMatchObject({ text: "from the terminal client" });
  expect(await terminal.exited).toBe(0);
  alice.close();
  bob.close();
  child.proc.kill("SIGTERM");
  expect(await child.proc.exited).toBe(0);
  child = null;
}, 120_000);

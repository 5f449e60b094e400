// The terminal client (`chat` subcommand), driven through piped stdin against a real
// server, next to a protocol-level client: talking, /msg, /join, /who, /nick, /leave,
// coloured names, riding out a dropped connection, /quit and end of input.
import { afterEach, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import type { ChatServer } from "../src/app.ts";
import { parseLine } from "../src/terminal/commands.ts";
import { style, useColour } from "../src/terminal/format.ts";
import { TestClient } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";

const ENTRY = new URL("../src/server.ts", import.meta.url).pathname;
const fixture = serverFixture({ historyDb: ":memory:", rateLimit: 0, presenceWindow: 20 });
const running: Subprocess[] = [];

afterEach(() => {
  for (const p of running.splice(0)) p.kill("SIGKILL");
});

const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");

/** The terminal client as a child process: lines in, lines out. */
class Terminal {
  readonly lines: string[] = [];
  readonly raw: string[] = [];
  private waiters: { pattern: RegExp; from: number; resolve: (index: number) => void }[] = [];
  /** Lines before it were matched already: line() looks after it, in order, like TestClient.next. */
  private cursor = 0;
  readonly proc: Subprocess<"pipe", "pipe", "pipe">;

  constructor(server: ChatServer, args: string[], env: Record<string, string> = {}) {
    this.proc = Bun.spawn([process.execPath, ENTRY, "chat", server.wsUrl.replace("/ws", ""), ...args], {
      stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "", FORCE_COLOR: "", ...env },
    });
    running.push(this.proc);
    void this.read();
  }

  private find(pattern: RegExp, from: number): number {
    for (let i = from; i < this.lines.length; i++) if (pattern.test(this.lines[i]!)) return i;
    return -1;
  }

  private async read(): Promise<void> {
    let buffer = "";
    const decoder = new TextDecoder();
    for await (const chunk of this.proc.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        this.raw.push(line);
        this.lines.push(plain(line));
        this.waiters = this.waiters.filter((w) => {
          const hit = this.find(w.pattern, w.from);
          if (hit !== -1) w.resolve(hit);
          return hit === -1;
        });
      }
    }
  }

  /** The next line (after the last one matched, or from `from`) matching `pattern`. */
  async line(pattern: RegExp, from = this.cursor): Promise<string> {
    let index = this.find(pattern, from);
    if (index === -1) {
      index = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line like ${pattern}; got:\n${this.lines.join("\n")}`)), 10_000);
        this.waiters.push({ pattern, from, resolve: (i) => (clearTimeout(timer), resolve(i)) });
      });
    }
    this.cursor = index + 1;
    return this.lines[index]!;
  }

  type(...lines: string[]): void {
    for (const l of lines) this.proc.stdin.write(`${l}\n`);
    this.proc.stdin.flush();
  }
}

describe("commands", () => {
  test("lines become commands; mistakes get their usage", () => {
    expect(parseLine("hello there")).toEqual({ kind: "say", text: "hello there" });
    expect(parseLine("//not a command")).toEqual({ kind: "say", text: "/not a command" });
    expect(parseLine("/join dev")).toEqual({ kind: "join", room: "dev" });
    expect(parseLine("/leave")).toEqual({ kind: "leave" });
    expect(parseLine("/msg bob  two  spaces")).toEqual({ kind: "msg", to: "bob", text: "two  spaces" });
    expect(parseLine("/who")).toEqual({ kind: "who" });
    expect(parseLine("/nick 李雷")).toEqual({ kind: "nick", name: "李雷" });
    expect(parseLine("/quit")).toEqual({ kind: "quit" });
    expect(parseLine("   ")).toEqual({ kind: "nothing" });
    expect(parseLine("/msg bob")).toEqual({ kind: "usage", message: "usage: /msg <name> <text>" });
    expect(parseLine("/join")).toEqual({ kind: "usage", message: "usage: /join <room>" });
    expect(parseLine("/jion dev")).toEqual({ kind: "usage", message: "unknown command /jion; /help lists them" });
  });

  test("names are coloured at a terminal, the same name always alike, and never with NO_COLOR", () => {
    expect(useColour({ isTTY: true }, {})).toBe(true);
    expect(useColour({ isTTY: false }, {})).toBe(false);
    expect(useColour({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(useColour({ isTTY: false }, { FORCE_COLOR: "1" })).toBe(true);
    const s = style(true);
    expect(s.name("alice")).toMatch(/^\x1b\[\d+malice\x1b\[0m$/);
    expect(s.name("alice")).toBe(s.name("alice"));
    expect(style(false).name("alice")).toBe("alice");
  });
});

describe("the terminal client", () => {
  test("talks, messages privately, joins, lists, renames and leaves", async () => {
    const server = await fixture.start();
    const bob = await fixture.connect({ name: "bob" });
    const alice = new Terminal(server, ["--name", "alice"], { FORCE_COLOR: "1" });
    await alice.line(/^\* connected as alice in #lobby \(2 online: (alice, bob|bob, alice)\)/);
    bob.send("hi alice");
    await alice.line(/^\d\d:\d\d #lobby bob: hi alice$/);
    expect(alice.raw.find((l) => l.includes("hi alice"))).toMatch(/\x1b\[\d+mbob\x1b\[0m/); // coloured name

    alice.type("hello bob", "/msg bob psst, private", "/join dev", "only in dev", "/who", "/nick alicia", "/leave dev", "/msg nobody hi");
    expect(await bob.next("message", (m) => m.text === "hello bob")).toMatchObject({ from: "alice", room: "lobby" });
    expect(await bob.next("private")).toMatchObject({ from: "alice", to: "bob", text: "psst, private" });
    await alice.line(/^\d\d:\d\d \[private\] alice → bob: psst, private$/);
    await alice.line(/^\* joined #dev \(1 online\)/);
    await alice.line(/^\d\d:\d\d #dev alice: only in dev$/);
    await alice.line(/^\* #dev: 1 online: alice$/);
    expect(await bob.next("nick")).toMatchObject({ from: "alice", name: "alicia" });
    await alice.line(/^\* you are now alicia$/);
    await alice.line(/^\* left #dev; your messages go to #lobby$/);
    await alice.line(/^! no_such_user: /);
    bob.send({ type: "private", to: "alicia", text: "nice name" });
    await alice.line(/\[private\] bob → alicia: nice name$/);
    bob.send({ type: "nick", name: "robert" });
    await alice.line(/^\* bob is now robert$/);

    alice.type("/quit");
    expect(await alice.proc.exited).toBe(0);
  });

  test("reconnects by itself and shows what was said meanwhile; ends at end of input once answered", async () => {
    const server = await fixture.start();
    const alice = new Terminal(server, ["--name", "alice"]);
    await alice.line(/^\* connected as alice/);
    // The network drops alice's connection; bob speaks before she is back.
    const mark = alice.lines.length;
    const session = [...server.engine.sessions()].find((s) => s.name === "alice")!;
    session.ws!.terminate();
    await alice.line(/^\* disconnected; reconnecting in \d+s$/);
    const bob = await TestClient.connect(server.wsUrl, { name: "bob" });
    fixture.clients.push(bob);
    bob.send("while you were away");
    await bob.next("message");
    await alice.line(/^\* reconnected as alice/, mark);
    await alice.line(/#lobby bob: while you were away$/, mark);
    alice.type("back");
    alice.proc.stdin.end();
    expect(await bob.next("message", (m) => m.text === "back")).toMatchObject({ from: "alice" });
    expect(await alice.proc.exited).toBe(0);
    expect(alice.lines.filter((l) => l.endsWith("bob: while you were away"))).toHaveLength(1);
  });

  test("a name that is taken ends it with a reason and exit code 1; --help and bad addresses", async () => {
    const server = await fixture.start();
    await fixture.connect({ name: "alice" });
    const second = new Terminal(server, ["--name", "alice"]);
    await second.line(/^! the server refused: name_taken/);
    expect(await second.proc.exited).toBe(1);
    const help = Bun.spawnSync([process.execPath, ENTRY, "chat", "--help"]);
    expect(help.stdout.toString()).toStartWith("Usage: bun run src/server.ts chat <url> [--name alice]");
    const bad = Bun.spawnSync([process.execPath, ENTRY, "chat", "localhost:3000"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toBe('bunchat: chat: "localhost:3000" is not a ws:// or wss:// address\n');
  });
});

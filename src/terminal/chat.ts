// `bun run src/server.ts chat ws://host:port --name alice` (or `bunchat chat …`): a chat
// client for people who live in a terminal, built on bunchat/client like the web page.
// Lines typed are messages to the current room or slash commands (commands.ts); events
// print one line each (format.ts); the SDK reconnects and recovers by itself. Ends on
// /quit or end of input (after what was typed has been answered), exit code 0; a refusal
// that retrying cannot fix ends it with 1.
import { createInterface, type Interface } from "node:readline";
import { connect, type ChatClient, type ChatError } from "../client/index.ts";
import { ConfigError, parseFlags } from "../config.ts";
import { HELP, parseLine, type Command } from "./commands.ts";
import { clock, style, useColour } from "./format.ts";

function chatHelp(program: string): string {
  return [
    `Usage: ${program} chat <url> [--name alice] [--room lobby] [--token T]`,
    "",
    "A terminal chat client: type to talk in the current room; /help lists the commands.",
    "",
    "  <url>          the server, e.g. ws://localhost:3000",
    "  --name N       your nickname (default: the server picks one)",
    "  --room R       the first room   [default: lobby]",
    "  --token T      a sign-in token, for servers with AUTH_SECRET (or BUNCHAT_TOKEN)",
    "",
    HELP,
  ].join("\n");
}

export async function chatCommand(argv: string[], program = "bun run src/server.ts"): Promise<number> {
  const { values, positionals } = parseFlags(argv, { name: { type: "string" }, room: { type: "string" }, token: { type: "string" }, help: { type: "boolean", short: "h" } }, "chat");
  if (values.help === true) {
    console.log(chatHelp(program));
    return 0;
  }
  const url = positionals[0];
  if (!url || positionals.length > 1) throw new ConfigError("chat: give the server's address: chat ws://host:3000 --name alice");
  if (!/^(wss?|https?):\/\//.test(url) || !URL.canParse(url)) throw new ConfigError(`chat: "${url}" is not a ws:// or wss:// address`);
  const text = (key: string) => (typeof values[key] === "string" ? values[key] : undefined);
  const token = text("token") ?? process.env.BUNCHAT_TOKEN;
  const client = connect(url, { ...(text("name") ? { name: text("name")! } : {}), room: text("room") ?? "lobby", ...(token ? { token } : {}) });
  return new TerminalChat(client).run();
}

class TerminalChat {
  private readonly tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  private readonly s = style(useColour(process.stdout));
  private readonly rl: Interface;
  /**
   * Lines run one after another, each once the previous one was answered: "/join dev"
   * then "hi" says hi in dev even when both arrive at once (pasted, or piped in).
   */
  private lines: Promise<void> = Promise.resolve();
  private finish: (code: number) => void = () => {};
  private ended = false;
  /** Rooms asked for with /join: their `joined` is announced (rejoins after a reconnect are not). */
  private readonly joining = new Set<string>();
  private lastRename = "";

  constructor(private readonly chat: ChatClient) {
    this.rl = createInterface({ input: process.stdin, output: process.stdout, terminal: this.tty, prompt: "> " });
  }

  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    this.listen();
    this.rl.on("line", (line) => {
      const command = parseLine(line);
      this.lines = this.lines.then(() => (this.ended ? undefined : this.handle(command)));
      if (this.tty && !this.ended) this.rl.prompt();
    });
    // End of input (Ctrl-D, or the end of a pipe): leave once what was typed is answered.
    this.rl.on("close", () => void this.lines.then(() => this.end(0)));
    return done;
  }

  private print(line: string): void {
    if (!this.tty) return void process.stdout.write(`${line}\n`);
    // Keep the half-typed line: clear it, print above it, draw it again.
    process.stdout.write("\r\x1b[2K");
    process.stdout.write(`${line}\n`);
    if (!this.ended) this.rl.prompt(true);
  }

  private info(line: string): void {
    this.print(this.s.dim(`* ${line}`));
  }

  private fail(error: unknown): void {
    const e = error as ChatError;
    this.print(this.s.error(`! ${e.code ? `${e.code}: ` : ""}${e.message}`));
  }

  /** A request's answer: printed (or its error), resolved once it came. */
  private track<T>(request: Promise<T>, then?: (value: T) => void): Promise<void> {
    return request.then((value) => then?.(value), (error: unknown) => this.fail(error));
  }

  private listen(): void {
    const { chat, s } = this;
    chat.on("welcome", (w, reconnect) => {
      if (reconnect) return this.info(`reconnected as ${s.name(w.you.name)}; caught up on what you missed`);
      this.info(`connected as ${s.name(w.you.name)} in #${w.room} (${w.online} online: ${w.members.map((m) => s.name(m)).join(", ")}) — /help for commands`);
      if (this.tty) this.rl.prompt();
    });
    chat.on("message", (m) => this.print(`${s.dim(clock(m.ts))} ${s.dim(`#${m.room}`)} ${s.name(m.from)}: ${m.text}`));
    chat.on("private", (m) => {
      const mine = chat.sentByMe(m);
      const queued = mine && m.state === "queued" ? s.dim(" (they are away: delivered when they come back)") : "";
      this.print(`${s.dim(clock(m.ts))} ${s.bold("[private]")} ${s.name(m.from)} → ${s.name(m.to)}: ${m.text}${queued}`);
    });
    chat.on("presence", (p) => {
      const me = chat.me?.name;
      for (const name of p.joined) if (name !== me) this.info(`${s.name(name)} joined #${p.room} (${p.online} online)`);
      for (const name of p.left) if (name !== me) this.info(`${s.name(name)} left #${p.room} (${p.online} online)`);
    });
    chat.on("nick", (n) => {
      // Announced once per room the person is in: say it once.
      const change = `${n.from}\n${n.name}`;
      if (change === this.lastRename) return;
      this.lastRename = change;
      this.info(n.self ? `you are now ${s.name(n.name)}` : `${s.name(n.from)} is now ${s.name(n.name)}`);
    });
    chat.on("joined", (room) => {
      if (this.joining.delete(room.name)) this.info(`joined #${room.name} (${room.online} online) — your messages go here now`);
    });
    chat.on("left", (room) => this.info(`left #${room}; your messages go to #${chat.currentRoom}`));
    chat.on("incomplete", (gap) => this.info(`some messages${gap.room ? ` in #${gap.room}` : ""} from while you were away are no longer stored`));
    chat.on("status", (status, detail) => {
      if (status === "offline") this.info(`disconnected; reconnecting in ${Math.max(1, Math.ceil((detail.retryInMs ?? 0) / 1000))}s`);
    });
    chat.on("refused", (refusal, willRetry) => {
      this.print(s.error(`! the server refused: ${refusal.error}${refusal.message ? ` (${refusal.message})` : ""}${willRetry ? "; retrying" : ""}`));
      if (!willRetry) this.end(1);
    });
    chat.on("error", (error) => this.fail(error));
    chat.on("system", (text) => this.info(text));
  }

  private handle(command: Command): Promise<void> | void {
    const { chat, s } = this;
    switch (command.kind) {
      case "nothing":
        return;
      case "say":
        return this.track(chat.send(command.text));
      case "msg":
        return this.track(chat.private(command.to, command.text));
      case "join":
        this.joining.add(command.room.toLowerCase());
        return this.track(chat.join(command.room));
      case "leave":
        return this.track(chat.leave(command.room ?? chat.currentRoom));
      case "who": {
        const room = (command.room ?? chat.currentRoom).toLowerCase();
        return this.track(chat.who(room), (who) => this.info(`#${room}: ${who.online} online: ${who.members.map((m) => s.name(m)).join(", ")}`));
      }
      case "nick":
        return this.track(chat.nick(command.name));
      case "help":
        return this.print(HELP);
      case "usage":
        return this.print(s.error(`! ${command.message}`));
      case "quit":
        return this.end(0);
    }
  }

  private end(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.chat.close();
    this.rl.close();
    this.finish(code);
  }
}

// Entry point: config → createServer → listen; SIGINT/SIGTERM → graceful stop, exit 0.
//   bun run src/server.ts [options]            run the chat server
//   bun run src/server.ts token <name> [...]   mint an auth token
//   bun run src/server.ts chat <url> [...]     the terminal chat client
//   bun run src/server.ts --help | --version
import { createServer } from "./app.ts";
import { ConfigError, helpText, invokedAs, parseConfig, VERSION } from "./config.ts";
import { superviseWorkers } from "./supervisor.ts";
import { chatCommand } from "./terminal/chat.ts";
import { mintTokenCommand } from "./transport/token-command.ts";
import { createLogger, resolveLogFormat } from "./obs/log.ts";

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "token") return mintTokenCommand(argv.slice(1), invokedAs());
  if (argv[0] === "chat") return chatCommand(argv.slice(1), invokedAs());
  const { config, help, version } = parseConfig(argv);
  if (version) {
    console.log(`bunchat ${VERSION}`);
    return 0;
  }
  if (help) {
    console.log(helpText(invokedAs()));
    return 0;
  }
  const log = createLogger(config.logLevel, config.nodeId || undefined, undefined, resolveLogFormat(config.logFormat));
  if (config.workers > 1) return superviseWorkers(config, argv, log);
  const chat = await createServer(config, { log });
  if (config.logLevel === "silent") console.log(`bunchat listening on ${chat.url}`);
  const shutdown = async (signal: string) => {
    chat.log.info("signal", { signal });
    await chat.stop();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  return -1; // keep running
}

main(Bun.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      console.error(`bunchat: ${error.message}`);
      process.exit(2);
    }
    console.error(`bunchat: failed to start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);

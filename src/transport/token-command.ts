// `bun run src/server.ts token <name> [--ttl 1h] [--rooms a,b]`: mint an HS256 token with
// AUTH_SECRET (or --auth-secret) for operators and tests. Prints the token alone.
import { parseArgs } from "node:util";
import { ConfigError } from "../config.ts";
import { parseDuration, signToken, type TokenClaims } from "./jwt.ts";

export async function mintTokenCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ttl: { type: "string" }, rooms: { type: "string" }, "auth-secret": { type: "string" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new ConfigError(`token: ${error instanceof Error ? error.message.split("\n")[0] : "bad arguments"}`);
  }
  const name = parsed.positionals[0];
  if (!name) throw new ConfigError("token: give the user name: token <name> [--ttl 1h] [--rooms a,b]");
  const secret = parsed.values["auth-secret"] ?? process.env.AUTH_SECRET ?? "";
  if (secret === "") throw new ConfigError("token: set AUTH_SECRET (or --auth-secret) to the server's secret");
  const ttl = parseDuration(parsed.values.ttl ?? "1h");
  if (ttl === null) throw new ConfigError(`token: invalid --ttl "${parsed.values.ttl}" (use 30s, 15m, 1h, 7d)`);
  const now = Math.floor(Date.now() / 1000);
  const claims: TokenClaims = { sub: name, iat: now, exp: now + ttl };
  if (parsed.values.rooms) claims.rooms = parsed.values.rooms.split(",").map((r) => r.trim()).filter(Boolean);
  console.log(await signToken(secret, claims));
  return 0;
}

// `bun run src/server.ts token <name> [--ttl 1h] [--rooms a,b]`: mint an HS256 token with
// AUTH_SECRET (or --auth-secret) for operators and tests. Prints the token alone.
import { checkRoom } from "../protocol/names.ts";
import { ConfigError, parseFlags } from "../config.ts";
import { parseDuration, signToken, type TokenClaims } from "./jwt.ts";

const DEFAULT_TTL = "1h";

export function tokenHelp(program: string): string {
  return [
    `Usage: ${program} token <name> [--ttl ${DEFAULT_TTL}] [--rooms a,b] [--auth-secret S]`,
    "",
    "Prints an HS256 token for <name>, signed with AUTH_SECRET (the server's secret).",
    "",
    `  --ttl T           how long it is valid: 30s, 15m, 1h, 7d   [default: ${DEFAULT_TTL}]`,
    "  --rooms a,b       the only rooms it may join (room names: letters, digits, '_', '-', '.')",
    "                    [default: any room]",
    "  --auth-secret S   the secret, instead of AUTH_SECRET",
  ].join("\n");
}

export async function mintTokenCommand(argv: string[], program = "bun run src/server.ts"): Promise<number> {
  const { values, positionals } = parseFlags(argv, { ttl: { type: "string" }, rooms: { type: "string" }, "auth-secret": { type: "string" }, help: { type: "boolean", short: "h" } }, "token");
  if (values.help === true) {
    console.log(tokenHelp(program));
    return 0;
  }
  const text = (key: string) => (typeof values[key] === "string" ? values[key] : undefined);
  const name = positionals[0];
  if (!name) throw new ConfigError(`token: give the user name: token <name> [--ttl ${DEFAULT_TTL}] [--rooms a,b]`);
  const secret = text("auth-secret") ?? process.env.AUTH_SECRET ?? "";
  if (secret === "") throw new ConfigError("token: set AUTH_SECRET (or --auth-secret) to the server's secret");
  const ttl = parseDuration(text("ttl") ?? DEFAULT_TTL);
  if (ttl === null) throw new ConfigError(`token: invalid --ttl "${text("ttl")}" (use 30s, 15m, 1h, 7d)`);
  const now = Math.floor(Date.now() / 1000);
  const claims: TokenClaims = { sub: name, iat: now, exp: now + ttl };
  const rooms = text("rooms");
  if (rooms !== undefined) claims.rooms = roomsClaim(rooms);
  console.log(await signToken(secret, claims));
  return 0;
}

/** The rooms of --rooms, each one a room the server would let a client join. */
function roomsClaim(list: string): string[] {
  const rooms = list.split(",").map((r) => r.trim()).filter(Boolean);
  if (rooms.length === 0) throw new ConfigError(`token: --rooms "${list}" names no room`);
  return rooms.map((room) => {
    const verdict = checkRoom(room);
    if (!verdict.ok) throw new ConfigError(`token: --rooms "${room}" can never be joined: ${verdict.reason}`);
    return verdict.name;
  });
}

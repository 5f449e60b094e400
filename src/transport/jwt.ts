// HS256 JSON Web Tokens with Web Crypto: sign for operators (the `token` command) and
// verify at admission. Only HS256 is accepted; `alg: none` and every other algorithm are
// refused, so a token cannot choose how it is checked.

export interface TokenClaims {
  sub: string;
  exp: number;
  iat?: number;
  rooms?: string[];
}

export type TokenVerdict = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(secret, key);
  }
  return key;
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  return new Uint8Array(Buffer.from(text, "base64url"));
}

function parseJsonPart(part: string): Record<string, unknown> | null {
  const bytes = fromBase64url(part);
  if (!bytes) return null;
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export async function signToken(secret: string, claims: TokenClaims): Promise<string> {
  const header = base64url(encoder.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const payload = base64url(encoder.encode(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(`${header}.${payload}`));
  return `${header}.${payload}.${base64url(new Uint8Array(signature))}`;
}

export async function verifyToken(secret: string, token: string, nowSeconds = Math.floor(Date.now() / 1000)): Promise<TokenVerdict> {
  if (token.length > 4096) return { ok: false, reason: "token is malformed" };
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, reason: "token is malformed" };
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = parseJsonPart(headerPart);
  if (!header) return { ok: false, reason: "token is malformed" };
  if (header.alg !== "HS256") return { ok: false, reason: "token algorithm is not accepted" };
  const signature = fromBase64url(signaturePart);
  if (!signature || signature.length !== 32) return { ok: false, reason: "token signature is invalid" };
  // crypto.subtle.verify compares in constant time.
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(secret), signature, encoder.encode(`${headerPart}.${payloadPart}`));
  if (!valid) return { ok: false, reason: "token signature is invalid" };
  const payload = parseJsonPart(payloadPart);
  if (!payload) return { ok: false, reason: "token is malformed" };
  const { sub, exp, nbf, rooms } = payload;
  if (typeof sub !== "string" || sub.length === 0) return { ok: false, reason: "token has no subject" };
  if (typeof exp !== "number" || !Number.isFinite(exp)) return { ok: false, reason: "token has no expiry" };
  if (exp <= nowSeconds) return { ok: false, reason: "token has expired" };
  if (typeof nbf === "number" && nbf > nowSeconds) return { ok: false, reason: "token is not valid yet" };
  if (rooms !== undefined && (!Array.isArray(rooms) || !rooms.every((r) => typeof r === "string"))) {
    return { ok: false, reason: "token rooms claim is malformed" };
  }
  const claims: TokenClaims = { sub, exp };
  if (rooms !== undefined) claims.rooms = rooms as string[];
  return { ok: true, claims };
}

/** "1h", "30m", "45s", "7d" or plain seconds → seconds. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2] === "m" ? 60 : m[2] === "h" ? 3600 : m[2] === "d" ? 86400 : 1;
  return n > 0 ? n * unit : null;
}

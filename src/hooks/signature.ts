// Every request bunchat makes to the backend (webhooks, the publish hook) is signed when
// WEBHOOK_SECRET is set: HMAC-SHA256 over "<timestamp>.<body>" (Web Crypto), sent as
//   X-Bunchat-Timestamp: <unix seconds>
//   X-Bunchat-Signature: sha256=<hex>
// A receiver recomputes it over the raw body, compares in constant time, and refuses a
// timestamp more than REPLAY_WINDOW_SECONDS from its own clock (a replayed request).
export const TIMESTAMP_HEADER = "x-bunchat-timestamp";
export const SIGNATURE_HEADER = "x-bunchat-signature";
export const REPLAY_WINDOW_SECONDS = 300;

const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(secret, key);
  }
  return key;
}

export async function sign(secret: string, timestamp: number, body: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), new TextEncoder().encode(`${timestamp}.${body}`));
  return `sha256=${Buffer.from(mac).toString("hex")}`;
}

/** The two headers of a signed request. */
export async function signatureHeaders(secret: string, body: string, now = Date.now()): Promise<Record<string, string>> {
  const timestamp = Math.floor(now / 1000);
  return { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: await sign(secret, timestamp, body) };
}

/** POST a JSON body to the backend, signed when there is a secret (webhooks, the publish hook). */
export async function signedPost(url: string, body: string, o: { secret: string; userAgent: string; signal: AbortSignal }): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json", "user-agent": o.userAgent };
  if (o.secret !== "") Object.assign(headers, await signatureHeaders(o.secret, body));
  return fetch(url, { method: "POST", body, headers, signal: o.signal });
}

/** What a receiver does: true when the body is signed with `secret`, recently. */
export async function verify(secret: string, headers: Headers, body: string, now = Date.now()): Promise<boolean> {
  const timestamp = Number(headers.get(TIMESTAMP_HEADER));
  const signature = headers.get(SIGNATURE_HEADER) ?? "";
  if (!Number.isSafeInteger(timestamp) || Math.abs(now / 1000 - timestamp) > REPLAY_WINDOW_SECONDS) return false;
  if (!/^sha256=[0-9a-f]{64}$/.test(signature)) return false;
  // crypto.subtle.verify compares in constant time.
  const mac = Buffer.from(signature.slice(7), "hex");
  return crypto.subtle.verify("HMAC", await hmacKey(secret), mac, new TextEncoder().encode(`${timestamp}.${body}`));
}

/** A URL fit for logs: any user:password it carries removed. */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return "(invalid URL)";
  }
}

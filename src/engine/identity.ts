// People's identities: ids, resume keys and the rule for who may hold a name. Without a
// token, the first connection that takes a free name creates a person and is told a
// resume key; presenting it (query, header or subprotocol, as tokens are) is the only
// way another tab, device or reconnect joins as that person. A name stays held for a
// grace period after its person's last connection closes. With a token, the subject is
// the person, on any number of devices.

/** Resume keys as the server hands them out: 32 URL-safe characters. */
export const RESUME_KEY = /^[A-Za-z0-9_-]{16,64}$/;

/** `bytes` random bytes as URL-safe text: the shape of every id the server makes up. */
export function randomId(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url");
}

export function newResumeKey(): string {
  return randomId(24);
}

/** Only the hash is kept: a copy of the store does not let anyone resume as anyone. */
export function resumeHash(key: string): string {
  return new Bun.CryptoHasher("sha256").update(key).digest("base64url");
}

/** A new anonymous person's id: random, so a name taken later by someone else is someone else. */
export function newPersonId(): string {
  return `a${randomId(12)}`;
}

/** A token person's id: their subject. */
export function subjectId(subject: string): string {
  return `t:${subject}`;
}

/**
 * How long a person without connections is remembered (who held a name, their resume key,
 * who their private history and away messages belong to): the history's age limit when
 * one is set, else 30 days, never less than the grace period.
 */
export function peopleRetentionSeconds(config: { nameGrace: number; historyMaxAge: number }): number {
  return Math.max(config.nameGrace, config.historyMaxAge > 0 ? config.historyMaxAge : 30 * 86_400);
}

/** Held: connected somewhere, or gone for less than the grace period. */
export function held(connections: number, seen: number, now: number, graceMs: number): boolean {
  return connections > 0 || now - seen < graceMs;
}

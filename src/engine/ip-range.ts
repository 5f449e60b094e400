// IP addresses and ranges for IP bans: "203.0.113.7", "2001:db8::1", "198.51.100.0/24",
// "2001:db8:42::/48". An IPv4 address seen as IPv6 ("::ffff:203.0.113.7", as a dual-stack
// socket reports it) is the IPv4 address, so one ban covers both spellings.

export interface IpRange {
  /** 4 bytes (IPv4) or 16 (IPv6). */
  bytes: Uint8Array;
  /** Leading bits that must match: 32 / 128 for one address. */
  prefix: number;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return null;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (half: string): number[] | null => {
    if (half === "") return [];
    const out: number[] = [];
    const pieces = half.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      // A trailing dotted IPv4 is two groups ("::ffff:192.0.2.1").
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-f]{1,4}$/i.test(piece)) return null;
        out.push(Number.parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** An address as 4 or 16 bytes, IPv4-mapped IPv6 as IPv4; null when it is not an address. */
export function parseIp(text: string): Uint8Array | null {
  const t = text.trim();
  if (t.includes(":")) {
    const v6 = parseIpv6(t.replace(/^\[|\]$/g, ""));
    if (!v6) return null;
    const mapped = v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
    return mapped ? v6.slice(12) : v6;
  }
  return parseIpv4(t);
}

/** "a.b.c.d", "a.b.c.d/n", an IPv6 address or "v6/n"; null when malformed. */
export function parseRange(text: string): IpRange | null {
  const [address, bits, extra] = text.trim().split("/");
  if (extra !== undefined || address === undefined) return null;
  const bytes = parseIp(address);
  if (!bytes) return null;
  if (bits === undefined) return { bytes, prefix: bytes.length * 8 };
  // "::ffff:10.0.0.0/104" is the IPv4 range 10.0.0.0/8.
  const mapped = address.includes(":") && bytes.length === 4;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (mapped ? 128 : bytes.length * 8)) return null;
  const prefix = mapped ? Number(bits) - 96 : Number(bits);
  if (prefix < 0) return null;
  return { bytes, prefix };
}

/** The canonical text of a range: the same range is always written the same way. */
export function formatRange(range: IpRange): string {
  const masked = new Uint8Array(range.bytes.length);
  for (let i = 0; i < masked.length; i++) {
    const keep = Math.max(0, Math.min(8, range.prefix - 8 * i));
    masked[i] = range.bytes[i]! & (0xff << (8 - keep));
  }
  const text = masked.length === 4
    ? [...masked].join(".")
    : Array.from({ length: 8 }, (_, i) => ((masked[2 * i]! << 8) | masked[2 * i + 1]!).toString(16)).join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
  return range.prefix === masked.length * 8 ? text : `${text}/${range.prefix}`;
}

export function inRange(ip: Uint8Array, range: IpRange): boolean {
  if (ip.length !== range.bytes.length) return false;
  for (let bit = 0; bit < range.prefix; bit += 8) {
    const keep = Math.min(8, range.prefix - bit);
    const mask = (0xff << (8 - keep)) & 0xff;
    const i = bit / 8;
    if ((ip[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}

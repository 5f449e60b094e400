// WebSocket framing (RFC 6455 §5.2), both directions: a client masks what it sends, a
// server never does. Shared by the storm's lean client and the tests (raw sockets that
// play either side).

/** A frame's header: FIN, opcode, RSV1 (compressed), payload length, mask, and where the payload starts. */
export interface FrameHead {
  fin: boolean;
  opcode: number;
  rsv1: boolean;
  length: number;
  /** The masking key of a client's frame; null for a server's. */
  mask: Uint8Array | null;
  /** Offset of the payload in the bytes read. */
  at: number;
}

/** The header of the frame at `i` in `bytes`, or null while it is incomplete. */
export function frameHead(bytes: Uint8Array, i: number): FrameHead | null {
  if (i + 2 > bytes.length) return null;
  let length = bytes[i + 1]! & 0x7f;
  let head = 2;
  if (length === 126) {
    if (i + 4 > bytes.length) return null;
    length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    head = 4;
  } else if (length === 127) {
    if (i + 10 > bytes.length) return null;
    length = Number(new DataView(bytes.buffer, bytes.byteOffset + i + 2, 8).getBigUint64(0));
    head = 10;
  }
  const masked = (bytes[i + 1]! & 0x80) !== 0;
  if (masked && i + head + 4 > bytes.length) return null;
  const mask = masked ? bytes.subarray(i + head, i + head + 4) : null;
  return { fin: (bytes[i]! & 0x80) !== 0, opcode: bytes[i]! & 0x0f, rsv1: (bytes[i]! & 0x40) !== 0, length, mask, at: i + head + (masked ? 4 : 0) };
}

/** A frame, its length in the shortest form; masked with `mask` when given (a client's). */
export function encodeFrame(opcode: number, payload: Uint8Array, mask: Uint8Array | null = null, fin = true): Uint8Array {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const maskBit = mask ? 0x80 : 0;
  const start = head + (mask ? 4 : 0);
  const frame = new Uint8Array(start + len);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  if (head === 2) frame[1] = maskBit | len;
  else if (head === 4) {
    frame[1] = maskBit | 126;
    frame[2] = len >> 8;
    frame[3] = len & 0xff;
  } else {
    frame[1] = maskBit | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(len));
  }
  if (!mask) frame.set(payload, start);
  else {
    frame.set(mask, head);
    for (let i = 0; i < len; i++) frame[start + i] = payload[i]! ^ mask[i & 3]!;
  }
  return frame;
}

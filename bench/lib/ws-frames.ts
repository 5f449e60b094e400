// WebSocket framing as a client sees it (RFC 6455 §5.2): reading the server's frames, which
// are never masked, and writing its own, which always are. Shared by the storm's lean client
// and the tests' raw socket.

/** A server frame's header: FIN, opcode, RSV1 (compressed), payload length, and where the payload starts. */
export interface FrameHead {
  fin: boolean;
  opcode: number;
  rsv1: boolean;
  length: number;
  /** Offset of the payload in the bytes read. */
  at: number;
}

/** The header of the server frame at `i` in `bytes`, or null while it is incomplete. */
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
  return { fin: (bytes[i]! & 0x80) !== 0, opcode: bytes[i]! & 0x0f, rsv1: (bytes[i]! & 0x40) !== 0, length, at: i + head };
}

/** A client frame: the payload masked with `mask`, its length in the shortest form. */
export function clientFrame(opcode: number, payload: Uint8Array, mask: Uint8Array, fin = true): Uint8Array {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = new Uint8Array(head + 4 + len);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  if (head === 2) frame[1] = 0x80 | len;
  else if (head === 4) {
    frame[1] = 0x80 | 126;
    frame[2] = len >> 8;
    frame[3] = len & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(len));
  }
  frame.set(mask, head);
  for (let i = 0; i < len; i++) frame[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

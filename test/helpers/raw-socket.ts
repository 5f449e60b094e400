// A deliberately minimal WebSocket client over raw TCP, for frames no well-behaved client
// library will send: invalid UTF-8 in a text frame, reserved opcodes, lying lengths.
import type { Socket } from "bun";

export interface RawConnection {
  sendFrame(opcode: number, payload: Uint8Array, fin?: boolean): void;
  sendBytes(bytes: Uint8Array): void;
  /** Resolves with the close code the server sent (or 1006 if the TCP connection just ended). */
  closed: Promise<number>;
  received: () => Uint8Array;
  end(): void;
}

/** A server frame's header: opcode, RSV1 (compressed), payload length and where the payload starts. */
export interface FrameHead {
  opcode: number;
  rsv1: boolean;
  length: number;
  at: number;
}

/** The complete (unmasked) server frames at the start of `bytes`; a partial one at the end is left out. */
export function frameHeads(bytes: Uint8Array): FrameHead[] {
  const heads: FrameHead[] = [];
  let i = 0;
  while (i + 2 <= bytes.length) {
    let length = bytes[i + 1]! & 0x7f;
    let head = 2;
    if (length === 126) {
      if (i + 4 > bytes.length) break;
      length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
      head = 4;
    } else if (length === 127) {
      if (i + 10 > bytes.length) break;
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + i + 2, 8).getBigUint64(0));
      head = 10;
    }
    if (i + head + length > bytes.length) break;
    heads.push({ opcode: bytes[i]! & 0x0f, rsv1: (bytes[i]! & 0x40) !== 0, length, at: i + head });
    i += head + length;
  }
  return heads;
}

/** `extensions`: a Sec-WebSocket-Extensions offer (e.g. "permessage-deflate"). */
export async function rawConnect(port: number, path = "/ws?name=raw", extensions?: string): Promise<RawConnection> {
  let buffer = new Uint8Array(0);
  let upgraded = false;
  let resolveClosed!: (code: number) => void;
  const closed = new Promise<number>((r) => (resolveClosed = r));
  let resolveUpgrade!: () => void;
  let rejectUpgrade!: (e: Error) => void;
  const upgradedPromise = new Promise<void>((res, rej) => ((resolveUpgrade = res), (rejectUpgrade = rej)));
  let closeCode = 1006;

  const scanFrames = () => {
    // A close frame (opcode 8) among the server's frames carries its code.
    for (const f of frameHeads(buffer)) {
      if (f.opcode === 8 && f.length >= 2) closeCode = (buffer[f.at]! << 8) | buffer[f.at + 1]!;
    }
  };

  const socket: Socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        const merged = new Uint8Array(buffer.length + chunk.length);
        merged.set(buffer);
        merged.set(chunk, buffer.length);
        buffer = merged;
        if (!upgraded) {
          const text = new TextDecoder().decode(buffer);
          const end = text.indexOf("\r\n\r\n");
          if (end < 0) return;
          if (!text.startsWith("HTTP/1.1 101")) return rejectUpgrade(new Error(text.split("\r\n")[0]));
          upgraded = true;
          buffer = buffer.slice(end + 4);
          resolveUpgrade();
        }
        scanFrames();
      },
      close() {
        resolveClosed(closeCode);
      },
      error() {
        resolveClosed(closeCode);
      },
    },
  });
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
      (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : "") +
      "\r\n",
  );
  await upgradedPromise;

  const mask = new Uint8Array([0x12, 0x34, 0x56, 0x78]);
  return {
    sendFrame(opcode, payload, fin = true) {
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
      for (let i = 0; i < len; i++) frame[head + 4 + i] = payload[i]! ^ mask[i % 4]!;
      socket.write(frame);
    },
    sendBytes(bytes) {
      socket.write(bytes);
    },
    closed,
    received: () => buffer,
    end: () => socket.end(),
  };
}

// A deliberately minimal WebSocket client over raw TCP, for frames no well-behaved client
// library will send: invalid UTF-8 in a text frame, reserved opcodes, lying lengths.
import type { Socket } from "bun";
import { encodeFrame, frameHead, type FrameHead } from "../../bench/lib/ws-frames.ts";

export type { FrameHead };

export interface RawConnection {
  sendFrame(opcode: number, payload: Uint8Array, fin?: boolean): void;
  sendBytes(bytes: Uint8Array): void;
  /** Resolves with the close code the server sent (or 1006 if the TCP connection just ended). */
  closed: Promise<number>;
  received: () => Uint8Array;
  end(): void;
}

/** The complete server frames at the start of `bytes`; a partial one at the end is left out. */
export function frameHeads(bytes: Uint8Array): FrameHead[] {
  const heads: FrameHead[] = [];
  let i = 0;
  for (let head = frameHead(bytes, i); head && head.at + head.length <= bytes.length; head = frameHead(bytes, i)) {
    heads.push(head);
    i = head.at + head.length;
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
      socket.write(encodeFrame(opcode, payload, mask, fin));
    },
    sendBytes(bytes) {
      socket.write(bytes);
    },
    closed,
    received: () => buffer,
    end: () => socket.end(),
  };
}

// PER_MESSAGE_DEFLATE: frames are compressed for clients that offer permessage-deflate
// (browsers and Bun's client do), and still arrive intact; off by default.
import { describe, expect, test } from "bun:test";
import { serverFixture } from "./helpers/fixture.ts";
import { rawConnect } from "./helpers/raw-socket.ts";

const fixture = serverFixture({ presenceWindow: 20, rateLimit: 0 });
const { start, connect } = fixture;

/** The Sec-WebSocket-Extensions the server answers a client offering permessage-deflate. */
async function negotiated(port: number): Promise<string | null> {
  const res = await fetch(`http://127.0.0.1:${port}/ws?name=probe${Math.random().toString(36).slice(2, 6)}`, {
    headers: {
      upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13",
      "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
    },
  });
  return res.headers.get("sec-websocket-extensions");
}

describe("per-message deflate", () => {
  test("off by default: no extension is negotiated", async () => {
    const s = await start();
    expect(await negotiated(s.port)).toBeNull();
  });

  test.each(["shared", "dedicated"] as const)("%s: negotiated, and long frames arrive intact", async (mode) => {
    const s = await start({ perMessageDeflate: mode });
    expect(await negotiated(s.port)).toContain("permessage-deflate");
    const alice = await connect({ name: "alice" });
    const bob = await connect({ name: "bob" });
    const text = "compressible ".repeat(200).trim();
    alice.send({ type: "chat", text });
    expect((await bob.next("message")).text).toBe(text);
  });

  test("frames to a client that offered deflate are compressed on the wire (RSV1 set, fewer bytes)", async () => {
    const s = await start({ perMessageDeflate: "shared" });
    const wire = await rawDeflateClient(s.port);
    const sender = await connect({ name: "sender" });
    const text = "compressible ".repeat(300).trim();
    sender.send({ type: "chat", text });
    await Bun.sleep(200);
    const frames = wire.frames();
    const big = frames.find((f) => f.length > 200) ?? frames.at(-1)!;
    expect(big.rsv1).toBe(true);
    expect(big.length).toBeLessThan(text.length / 4);
    wire.end();
  });

  test("a raw client that offers nothing still gets plain frames", async () => {
    const s = await start({ perMessageDeflate: "shared" });
    const raw = await rawConnect(s.port, "/ws?name=plain");
    await Bun.sleep(100);
    expect(new TextDecoder().decode(raw.received())).toContain('"type":"welcome"');
    raw.end();
  });
});

/** A raw TCP client that offers permessage-deflate and reports each frame's RSV1 bit and length. */
async function rawDeflateClient(port: number): Promise<{ frames: () => { rsv1: boolean; length: number }[]; end: () => void }> {
  let buffer = new Uint8Array(0);
  let headerDone = false;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        const merged = new Uint8Array(buffer.length + chunk.length);
        merged.set(buffer);
        merged.set(chunk, buffer.length);
        buffer = merged;
      },
    },
  });
  socket.write(
    "GET /ws?name=wire HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
  );
  return {
    frames() {
      let i = 0;
      if (!headerDone) {
        const text = new TextDecoder().decode(buffer);
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) return [];
        i = new TextEncoder().encode(text.slice(0, end + 4)).length;
      }
      const out: { rsv1: boolean; length: number }[] = [];
      while (i + 2 <= buffer.length) {
        const rsv1 = (buffer[i]! & 0x40) !== 0;
        let len = buffer[i + 1]! & 0x7f;
        let head = 2;
        if (len === 126) {
          len = (buffer[i + 2]! << 8) | buffer[i + 3]!;
          head = 4;
        } else if (len === 127) {
          len = Number(new DataView(buffer.buffer, buffer.byteOffset + i + 2, 8).getBigUint64(0));
          head = 10;
        }
        if (i + head + len > buffer.length) break;
        out.push({ rsv1, length: len });
        i += head + len;
      }
      return out;
    },
    end: () => socket.end(),
  };
}

// PER_MESSAGE_DEFLATE: frames are compressed for clients that offer permessage-deflate
// (browsers and Bun's client do), and still arrive intact; off by default.
import { describe, expect, test } from "bun:test";
import { serverFixture } from "./helpers/fixture.ts";
import { frameHeads, rawConnect } from "./helpers/raw-socket.ts";

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
    const wire = await rawConnect(s.port, "/ws?name=wire", "permessage-deflate");
    const sender = await connect({ name: "sender" });
    const text = "compressible ".repeat(300).trim();
    sender.send({ type: "chat", text });
    await Bun.sleep(200);
    const frames = frameHeads(wire.received());
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

// The storm's lean WebSocket client (bench/lib/lean-client.ts): against a real bunchat and a
// plain Bun server it counts a connection as made when the target says so, and against a
// scripted server it reads heads and frames however TCP splits them, answers pings, returns
// a close, and refuses what is not a WebSocket upgrade.
import { describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { leanConnect } from "../bench/lib/lean-client.ts";
import { encodeFrame, frameHead } from "../bench/lib/ws-frames.ts";
import { frameHeads } from "./helpers/raw-socket.ts";
import { eventually } from "./helpers/client.ts";
import { serverFixture } from "./helpers/fixture.ts";

const isWelcome = (text: string) => text.startsWith('{"type":"welcome"');

describe("against real servers", () => {
  const fx = serverFixture({ historyDb: "off" });

  test("bunchat: ready at the welcome, held until closed, and a refused name resolves null", async () => {
    const server = await fx.start();
    const url = `ws://127.0.0.1:${server.port}/ws?name=ada&room=storm`;
    const ada = await leanConnect(url, isWelcome);
    expect(ada).not.toBeNull();
    const watcher = await fx.connect({ name: "watcher", room: "storm" });
    expect(watcher.all("welcome")[0]!.members).toContain("ada");
    // The same name again, with no resume key: the server answers 409, not a welcome.
    expect(await leanConnect(url, isWelcome)).toBeNull();
    // Closed: the room counts only the watcher (ada's join and leave may cancel out in one presence window).
    ada!.close();
    await watcher.next("presence", (f) => f.online === 1);
  });

  test("a plain peer: ready at the 101; the server's close is reported", async () => {
    let serverSide: { close(code: number): void } | null = null;
    const bare = Bun.serve({
      port: 0,
      fetch: (req, srv) => (new URL(req.url).pathname === "/" && srv.upgrade(req) ? undefined : new Response("not here", { status: 404 })),
      websocket: { open: (ws) => void (serverSide = ws), message() {} },
    });
    try {
      let closed = 0;
      const socket = await leanConnect(`ws://127.0.0.1:${bare.port}/`, "open", { onClose: () => closed++ });
      expect(socket).not.toBeNull();
      await eventually(() => serverSide !== null);
      serverSide!.close(1001);
      await eventually(() => closed === 1);
      // A plain HTTP answer is no upgrade.
      expect(await leanConnect(`ws://127.0.0.1:${bare.port}/nothing-here`, "open")).toBeNull();
    } finally {
      bare.stop(true);
    }
  });

  test("nothing listening resolves null", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    expect(await leanConnect(`ws://127.0.0.1:${port}/ws`, "open")).toBeNull();
  });
});

/** A TCP server that answers the handshake as `script` says, recording what the client sends. */
function scripted(script: (socket: Socket<{ got: Uint8Array[] }>, key: string) => void | Promise<void>): { listener: TCPSocketListener<{ got: Uint8Array[] }>; sent: () => Uint8Array } {
  const got: Uint8Array[] = [];
  let head = "";
  const listener = Bun.listen<{ got: Uint8Array[] }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { got };
      },
      data(socket, chunk) {
        if (head.includes("\r\n\r\n")) {
          got.push(new Uint8Array(chunk));
          return;
        }
        head += new TextDecoder().decode(chunk);
        if (!head.includes("\r\n\r\n")) return;
        const key = /Sec-WebSocket-Key: (\S+)/.exec(head)![1]!;
        void script(socket, key);
      },
    },
  });
  return {
    listener,
    sent: () => Buffer.concat(got),
  };
}

const accept = (key: string) => new Bun.CryptoHasher("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
const ok101 = (key: string) => `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept(key)}\r\n\r\n`;

/** A server's frame: never masked. */
const serverFrame = (opcode: number, payload: Uint8Array, fin = true) => encodeFrame(opcode, payload, null, fin);

const text = (s: string) => new TextEncoder().encode(s);

/** The client's frames, unmasked. */
function clientFrames(bytes: Uint8Array): { opcode: number; masked: boolean; payload: Uint8Array }[] {
  const out: { opcode: number; masked: boolean; payload: Uint8Array }[] = [];
  for (let head = frameHead(bytes, 0); head && head.at + head.length <= bytes.length; head = frameHead(bytes, head.at + head.length)) {
    const { mask } = head;
    const payload = bytes.slice(head.at, head.at + head.length).map((b, k) => (mask ? b ^ mask[k & 3]! : b));
    out.push({ opcode: head.opcode, masked: mask !== null, payload });
  }
  return out;
}

describe("against a scripted server", () => {
  test("a head and a fragmented welcome sent a byte at a time; then a ping is answered and a close returned", async () => {
    let readyAt = -1;
    let written = 0;
    const welcome = `{"type":"welcome","members":[${Array.from({ length: 40 }, (_, i) => `"person-${i}"`).join(",")}]}`;
    const { listener, sent } = scripted(async (socket, key) => {
      const bytes = new Uint8Array([
        ...text(ok101(key)),
        ...serverFrame(1, text(welcome.slice(0, 100)), false), // a 16-bit length would need 126+: the rest is long
        ...serverFrame(0, text(welcome.slice(100)), true),
      ]);
      for (const b of bytes) {
        socket.write(new Uint8Array([b]));
        socket.flush();
        written++;
        await Bun.sleep(0);
      }
      await eventually(() => readyAt >= 0);
      socket.write(serverFrame(9, text("are you there")));
      await Bun.sleep(20);
      socket.write(serverFrame(8, new Uint8Array([0x03, 0xe9]))); // 1001
    });
    try {
      let closed = 0;
      const total = ok101("x".repeat(24)).length + 2 + 100 + 4 + welcome.length - 100;
      const socket = await leanConnect(`ws://127.0.0.1:${listener.port}/ws`, (t) => t === welcome, { onClose: () => closed++ });
      readyAt = written;
      expect(socket).not.toBeNull();
      // Ready only once the last byte of the last fragment was in.
      expect(readyAt).toBe(total);
      await eventually(() => clientFrames(sent()).length === 2);
      const [pong, close] = clientFrames(sent());
      expect(pong).toMatchObject({ opcode: 10, masked: true });
      expect(new TextDecoder().decode(pong!.payload)).toBe("are you there");
      expect(close).toMatchObject({ opcode: 8, masked: true });
      expect([...close!.payload]).toEqual([0x03, 0xe9]);
      // The server closed it: reported once (the client's own end is not counted again).
      expect(closed).toBe(1);
    } finally {
      listener.stop(true);
    }
  });

  test("frames after the welcome are skipped whole, however long, and the socket stays usable", async () => {
    const long = "y".repeat(70_000); // a 64-bit length
    const { listener, sent } = scripted((socket, key) => {
      socket.write(text(ok101(key)));
      socket.write(serverFrame(1, text('{"type":"welcome"}')));
      socket.write(serverFrame(1, text(long)));
      socket.write(serverFrame(9, text("ping after the long one")));
    });
    try {
      const socket = await leanConnect(`ws://127.0.0.1:${listener.port}/ws`, isWelcome);
      expect(socket).not.toBeNull();
      await eventually(() => clientFrames(sent()).length === 1);
      expect(new TextDecoder().decode(clientFrames(sent())[0]!.payload)).toBe("ping after the long one");
      socket!.close();
      await eventually(() => clientFrames(sent()).length === 2);
      expect(clientFrames(sent())[1]).toMatchObject({ opcode: 8 });
    } finally {
      listener.stop(true);
    }
  });

  test.each([
    ["a refusal status", (_key: string) => text("HTTP/1.1 409 Conflict\r\ncontent-length: 0\r\n\r\n")],
    ["a wrong accept", (_key: string) => text(ok101("someone else's key=="))],
    ["a close before the welcome", (key: string) => new Uint8Array([...text(ok101(key)), ...serverFrame(8, new Uint8Array([0x03, 0xf0]))])],
  ])("%s resolves null", async (_what, answer) => {
    const { listener } = scripted((socket, key) => void socket.write(answer(key)));
    try {
      expect(await leanConnect(`ws://127.0.0.1:${listener.port}/ws`, isWelcome)).toBeNull();
    } finally {
      listener.stop(true);
    }
  });

  test("a ping between the fragments of the welcome is answered, and the welcome still counts whole", async () => {
    const { listener, sent } = scripted((socket, key) => {
      socket.write(new Uint8Array([
        ...text(ok101(key)),
        ...serverFrame(1, new Uint8Array(0)), // an empty text frame: not the welcome
        ...serverFrame(1, text('{"type":"wel'), false),
        ...serverFrame(9, text("between")),
        ...serverFrame(0, text('come"}'), true),
      ]));
    });
    try {
      const socket = await leanConnect(`ws://127.0.0.1:${listener.port}/ws`, (t) => t === '{"type":"welcome"}');
      expect(socket).not.toBeNull();
      await eventually(() => clientFrames(sent()).length === 1);
      expect(new TextDecoder().decode(clientFrames(sent())[0]!.payload)).toBe("between");
      socket!.close();
    } finally {
      listener.stop(true);
    }
  });

  test("a close with a one-byte body (no status code) is returned with an empty one", async () => {
    let closed = 0;
    const { listener, sent } = scripted(async (socket, key) => {
      socket.write(new Uint8Array([...text(ok101(key)), ...serverFrame(1, text('{"type":"welcome"}'))]));
      await eventually(() => ready);
      socket.write(serverFrame(8, new Uint8Array([0x03])));
    });
    let ready = false;
    try {
      const socket = await leanConnect(`ws://127.0.0.1:${listener.port}/ws`, isWelcome, { onClose: () => closed++ });
      ready = socket !== null;
      await eventually(() => clientFrames(sent()).length === 1);
      expect(clientFrames(sent())[0]).toMatchObject({ opcode: 8, payload: new Uint8Array(0) });
      expect(closed).toBe(1);
    } finally {
      listener.stop(true);
    }
  });

  test("a server that never answers: the attempt is given up at its timeout and its socket let go", async () => {
    let ended = false;
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {}, close: () => void (ended = true) } });
    try {
      expect(await leanConnect(`ws://127.0.0.1:${silent.port}/ws`, isWelcome, { timeoutMs: 100 })).toBeNull();
      await eventually(() => ended);
    } finally {
      silent.stop(true);
    }
  });

  test("a control frame longer than 125 bytes is a protocol error: no connection", async () => {
    const { listener } = scripted((socket, key) => void socket.write(new Uint8Array([...text(ok101(key)), ...serverFrame(9, new Uint8Array(126))])));
    try {
      expect(await leanConnect(`ws://127.0.0.1:${listener.port}/ws`, isWelcome)).toBeNull();
    } finally {
      listener.stop(true);
    }
  });

  test("the server frames the raw socket helper reads are the ones the lean client reads", () => {
    const bytes = new Uint8Array([...serverFrame(1, text("a")), ...serverFrame(9, text("bb")), ...serverFrame(1, text("c".repeat(300)))]);
    expect(frameHeads(bytes).map((f) => [f.opcode, f.length])).toEqual([[1, 1], [9, 2], [1, 300]]);
  });
});

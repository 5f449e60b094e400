// A WebSocket client that only connects, for connect storms: the RFC 6455 handshake over a
// plain TCP socket, the frames read until the target says it is ready, and after that the
// socket held open (pings answered, a close returned) with what arrives skipped unread.
//
// Why not `new WebSocket`: a storm measures how fast the server admits people, so the
// generator, which shares this machine's two cores with the server, must cost far less than
// the server. Bun's WebSocket client spent about 0.5 ms of CPU per connect (8 s for 15,000),
// which capped every target near 3,000–4,000 connects/s whatever the server did; this
// client spends about a third of that, most of it in the kernel's TCP (bench/README.md).
import type { Socket, SocketHandler } from "bun";
import { encodeFrame, frameHead } from "./ws-frames.ts";

/** When a connection counts as made: on the 101 (a plain peer), or on a text frame it accepts (bunchat's welcome). */
export type Readiness = "open" | ((text: string) => boolean);

export interface LeanSocket {
  close(): void;
}

/**
 * One key per process and the accept the server must answer with (RFC 6455 §4.2.2), and
 * one mask for the few frames sent: the RFC wants both fresh per connection and frame, to
 * keep browsers from being used against proxies; a load generator on loopback saves the
 * work, and the server cannot tell.
 */
const KEY = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
const ACCEPT = new Bun.CryptoHasher("sha1").update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
const MASK = crypto.getRandomValues(new Uint8Array(4));
/** A response head longer than this is not a WebSocket server's 101. */
const MAX_HEAD = 8192;
/** The readiness message (bunchat's welcome) is kept while it arrives: at most this much. */
const MAX_MESSAGE = 1 << 20;
/** Control frames carry at most 125 bytes (RFC 6455 §5.5). */
const MAX_CONTROL = 125;
const OP_CONTINUATION = 0;
const OP_TEXT = 1;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

const decoder = new TextDecoder();

interface State {
  ready: Readiness;
  onClose: () => void;
  /** Bytes of an incomplete head or frame header, kept until the rest arrives. */
  pending: Uint8Array | null;
  upgraded: boolean;
  /** Settled: the promise has its answer (a socket, or null). */
  settled: boolean;
  answer: (socket: LeanSocket | null) => void;
  /** Payload bytes of the current frame still to come, and whether they are kept. */
  remaining: number;
  keeping: boolean;
  opcode: number;
  fin: boolean;
  payload: Uint8Array[];
  /** A text message split over frames (FIN unset), gathered until its last one. */
  message: Uint8Array[] | null;
  /** Bytes kept of the readiness message so far. */
  kept: number;
  closed: boolean;
  /** The socket once TCP connected; the give-up timer until the promise settles. */
  socket: Socket<State> | null;
  timer: ReturnType<typeof setTimeout> | null;
  request: string;
}

/**
 * Open a WebSocket to `url` and resolve once `ready` holds, or null when the server
 * refuses (any status but 101, a wrong accept, a protocol error), closes first, cannot be
 * reached, or has not made it ready within `timeoutMs` (then the attempt is abandoned).
 * `onClose` runs if a ready socket is closed by the server or the network later.
 */
export function leanConnect(url: string, ready: Readiness, options: { onClose?: () => void; timeoutMs?: number } = {}): Promise<LeanSocket | null> {
  const u = new URL(url);
  if (u.protocol !== "ws:") throw new Error("the lean client speaks ws:// only (storms run on loopback)");
  const request =
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  return new Promise((resolve) => {
    const state: State = {
      ready, onClose: options.onClose ?? (() => {}), pending: null, upgraded: false, settled: false, answer: resolve,
      remaining: 0, keeping: false, opcode: 0, fin: true, payload: [], message: null, kept: 0, closed: false,
      socket: null, timer: null, request,
    };
    if (options.timeoutMs !== undefined) state.timer = setTimeout(() => abandon(state), Math.max(0, options.timeoutMs));
    Bun.connect<State>({ hostname: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 80), data: state, socket: HANDLERS }).catch(() => gone(state));
  });
}

/** One set of handlers for every socket (each connect would otherwise make five closures). */
const HANDLERS: SocketHandler<State> = {
  open(socket) {
    const state = socket.data;
    state.socket = socket;
    // Given up on while TCP was still connecting: nothing more to do with it.
    if (state.closed) return void socket.end();
    socket.write(state.request);
  },
  data(socket, chunk) {
    read(socket, socket.data, chunk);
  },
  close(socket) {
    gone(socket.data);
  },
  error(socket) {
    gone(socket.data);
  },
  connectError(socket) {
    gone(socket.data);
  },
};

/** Not ready in time: settle with null and let the connection go, wherever it got to. */
function abandon(state: State): void {
  state.timer = null;
  if (state.settled) return;
  over(state);
  state.socket?.end();
}

/** The connection closed on its own (the server, the network). */
function gone(state: State): void {
  if (!state.closed) over(state);
}

/** The connection is over: null if it never became ready, else the close is reported. */
function over(state: State): void {
  state.closed = true;
  if (!state.settled) settle(state, null);
  else state.onClose();
}

function settle(state: State, socket: Socket<State> | null): void {
  state.settled = true;
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
  state.answer(socket ? { close: () => closeSocket(socket) } : null);
}

/** Our own close: nothing is reported. */
function closeSocket(socket: Socket<State>): void {
  if (socket.data.closed) return;
  socket.data.closed = true;
  socket.write(encodeFrame(OP_CLOSE, new Uint8Array([0x03, 0xe8]), MASK)); // 1000: done
  socket.end();
}

/** The server broke the protocol or closed: end the connection (read stops once closed). */
function endConnection(socket: Socket<State>): void {
  over(socket.data);
  socket.end();
}

function read(socket: Socket<State>, state: State, chunk: Uint8Array): void {
  if (state.closed) return;
  let data = chunk;
  if (state.pending) {
    data = Buffer.concat([state.pending, chunk]);
    state.pending = null;
  }
  let at = 0;
  if (!state.upgraded) {
    const end = headEnd(data);
    if (end < 0) {
      if (data.length > MAX_HEAD) return endConnection(socket);
      state.pending = new Uint8Array(data); // a copy: the chunk's memory is Bun's
      return;
    }
    const head = decoder.decode(data.subarray(0, end));
    if (!head.startsWith("HTTP/1.1 101 ") || headerValue(head, "sec-websocket-accept") !== ACCEPT) return endConnection(socket);
    state.upgraded = true;
    at = end;
    if (state.ready === "open") settle(state, socket);
  }
  while (at < data.length && !state.closed) {
    if (state.remaining > 0) {
      const n = Math.min(state.remaining, data.length - at);
      if (state.keeping) {
        state.payload.push(new Uint8Array(data.subarray(at, at + n)));
        if (state.opcode < OP_CLOSE) state.kept += n;
      }
      state.remaining -= n;
      at += n;
      if (state.remaining === 0) finishFrame(socket, state);
      continue;
    }
    const header = frameHead(data, at);
    if (header === null) {
      state.pending = new Uint8Array(data.subarray(at));
      return;
    }
    at = header.at;
    if (header.opcode >= OP_CLOSE ? header.length > MAX_CONTROL : !state.settled && state.kept + header.length > MAX_MESSAGE) return endConnection(socket);
    state.opcode = header.opcode;
    state.fin = header.fin;
    // Control frames are always read (a ping must be answered with its payload); data
    // frames only until the socket is ready: a held socket skips what it is sent.
    state.keeping = header.opcode >= OP_CLOSE || !state.settled;
    state.remaining = header.length;
    if (header.length === 0) finishFrame(socket, state);
  }
}

/** One frame's payload is in: answer control frames, and test text for readiness. */
function finishFrame(socket: Socket<State>, state: State): void {
  const payload = state.keeping ? Buffer.concat(state.payload) : null;
  if (state.payload.length > 0) state.payload = [];
  const opcode = state.opcode;
  if (opcode === OP_PING) {
    socket.write(encodeFrame(OP_PONG, payload!, MASK));
    return;
  }
  if (opcode === OP_CLOSE) {
    // Echo the close with its status code (none if it sent none, or only one byte of one).
    socket.write(encodeFrame(OP_CLOSE, payload!.length >= 2 ? payload!.subarray(0, 2) : new Uint8Array(0), MASK));
    return endConnection(socket);
  }
  if (opcode === OP_PONG || state.settled || typeof state.ready !== "function") return;
  // A text message, perhaps in fragments: readiness is judged on the whole of it.
  if (opcode === OP_TEXT || (opcode === OP_CONTINUATION && state.message)) {
    (state.message ??= []).push(payload!);
    if (!state.fin) return;
    const text = decoder.decode(Buffer.concat(state.message));
    state.message = null;
    state.kept = 0;
    if (state.ready(text)) settle(state, socket);
  }
}

/** Where the response head ends (after its blank line), or -1 while it is incomplete. */
function headEnd(data: Uint8Array): number {
  for (let i = 3; i < data.length; i++) {
    if (data[i] === 10 && data[i - 1] === 13 && data[i - 2] === 10 && data[i - 3] === 13) return i + 1;
  }
  return -1;
}

function headerValue(head: string, name: string): string | undefined {
  for (const line of head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return undefined;
}

// @ts-check
// The k6 fan-out benchmark, shared by bench/fanout.js (k6 ≥ 1.6: k6/websockets) and
// bench/fanout.k6-legacy.js (k6 0.50–1.5: k6/experimental/websockets): an ES module can
// only import statically, so each entry imports its k6's WebSocket and hands it here.
//
// S subscribers hold connections in one room while P publishers send RATE messages per
// second (in total) for DURATION seconds. Every message carries its send time;
// subscribers record end-to-end latency, deliveries, loss and order.
//
// "Lost" means accepted by the server and never delivered. A message the server's rate
// limit dropped (`error {code: "rate_limited"}`, or everything after a 1008 close) was
// never accepted: it is counted in bunchat_rate_limited / bunchat_policy_closes instead.
// To tell the two apart, each publisher counts its own messages coming back (bunchat
// echoes a sender's accepted messages to it) and, when done, announces "E|<id>|<accepted>"
// on a fresh connection; subscribers expect exactly that many from it.
import { setInterval, clearInterval, setTimeout } from "k6/timers";
import { Counter, Trend } from "k6/metrics";
import exec from "k6/execution";
import { isPolicyClose, RATE_LIMIT_ADVICE, textOf } from "./events.js";

/** @typedef {typeof import("k6/websockets").WebSocket} K6WebSocket */
/** @typedef {import("./events.js").K6Event} K6Event */

/** @param {K6WebSocket} WebSocket k6's WebSocket class, from whichever module this k6 has. */
export function fanout(WebSocket) {
  const URL = __ENV.URL || "ws://127.0.0.1:3000/ws";
  const SUBSCRIBERS = Number(__ENV.SUBSCRIBERS || 100);
  // Defaults within a default server's limits: 2 publishers × 10 msgs/s, against
  // RATE_LIMIT=20 per connection. Raise RATE against a server started with RATE_LIMIT=0.
  const PUBLISHERS = Number(__ENV.PUBLISHERS || 2);
  const RATE = Number(__ENV.RATE || 20); // messages per second, all publishers together
  const DURATION = Number(__ENV.DURATION || 10); // seconds of publishing
  const ROOM = __ENV.ROOM || "k6";
  const SIZE = Number(__ENV.SIZE || 64);
  const SETTLE = Number(__ENV.SETTLE || 3); // seconds for subscribers to connect first
  const GRACE = Number(__ENV.GRACE || 3); // seconds to wait for the last deliveries
  const P99_MS = Number(__ENV.P99_MS || 250);
  // Reference peers broadcast plain text and have no rate limit: no echoes to count.
  const PEER = __ENV.PEER === "1";

  const PER_PUBLISHER = Math.round((RATE * DURATION) / PUBLISHERS);

  const deliveries = new Counter("bunchat_deliveries");
  const sent = new Counter("bunchat_sent");
  const lost = new Counter("bunchat_lost_messages");
  const outOfOrder = new Counter("bunchat_out_of_order");
  const rateLimited = new Counter("bunchat_rate_limited");
  const policyCloses = new Counter("bunchat_policy_closes");
  const latency = new Trend("bunchat_latency", true);

  const options = {
    scenarios: {
      subscribers: {
        executor: "per-vu-iterations",
        exec: "subscriber",
        vus: SUBSCRIBERS,
        iterations: 1,
        maxDuration: `${SETTLE + DURATION + GRACE + 60}s`,
      },
      publishers: {
        executor: "per-vu-iterations",
        exec: "publisher",
        vus: PUBLISHERS,
        iterations: 1,
        startTime: `${SETTLE}s`,
        maxDuration: `${DURATION + GRACE + 60}s`,
      },
    },
    thresholds: {
      bunchat_lost_messages: ["count==0"],
      bunchat_out_of_order: ["count==0"],
      bunchat_latency: [`p(99)<${P99_MS}`],
      // Any of these means the run measured the server's rate limit, not its fan-out.
      bunchat_rate_limited: ["count==0"],
      bunchat_policy_closes: ["count==0"],
    },
  };

  /** @param {string} name */
  function connectUrl(name) {
    const sep = URL.includes("?") ? "&" : "?";
    return `${URL}${sep}name=${encodeURIComponent(name)}&room=${encodeURIComponent(ROOM)}`;
  }

  /**
   * The text of a frame, from bunchat JSON or a peer's plain text: a load message
   * ("L|publisher|seq|sentAt|…"), a publisher's end ("E|publisher|accepted"), or null.
   * @param {string} data
   * @returns {{ kind: "L", publisher: string, seq: number, sentAt: number } | { kind: "E", publisher: string, accepted: number } | { kind: "rate_limited" } | null}
   */
  function parse(data) {
    let text = data;
    if (data.charAt(0) === "{") {
      /** @type {{ type?: string, text?: unknown, code?: unknown }} */
      const frame = JSON.parse(data);
      if (frame.type === "error" && frame.code === "rate_limited") return { kind: "rate_limited" };
      if (frame.type !== "message" || typeof frame.text !== "string") return null;
      text = frame.text;
    }
    const parts = text.split("|");
    const publisher = parts[1] ?? "";
    if (parts[0] === "L") return { kind: "L", publisher, seq: Number(parts[2]), sentAt: Number(parts[3]) };
    if (parts[0] === "E") return { kind: "E", publisher, accepted: Number(parts[2]) };
    return null;
  }

  /**
   * Count this connection's 1008 close, once (k6 may report it as an error and a close).
   * Every VU adds 0 first, so k6 evaluates the threshold even when nothing happened.
   * @param {InstanceType<K6WebSocket>} ws
   * @param {() => void} [onPolicyClose]
   */
  function countPolicyCloses(ws, onPolicyClose) {
    policyCloses.add(0);
    let counted = false;
    /** @param {K6Event} event */
    const onEvent = (event) => {
      if (counted || !isPolicyClose(event)) return;
      counted = true;
      policyCloses.add(1);
      onPolicyClose?.();
    };
    ws.addEventListener("error", onEvent);
    ws.addEventListener("close", onEvent);
  }

  function subscriber() {
    const ws = new WebSocket(connectUrl(`k6-sub-${exec.vu.idInTest}`));
    countPolicyCloses(ws);
    /** @type {Record<string, number>} */
    const lastSeq = {};
    /** @type {Record<string, number>} */
    const received = {};
    /** @type {Record<string, number>} */
    const accepted = {};
    ws.addEventListener("message", (event) => {
      const data = textOf(event);
      const p = data === null ? null : parse(data);
      if (p?.kind === "E") accepted[p.publisher] = p.accepted;
      if (p?.kind !== "L") return;
      latency.add(Date.now() - p.sentAt);
      deliveries.add(1);
      received[p.publisher] = (received[p.publisher] ?? 0) + 1;
      const last = lastSeq[p.publisher];
      if (last !== undefined && p.seq <= last) outOfOrder.add(1);
      else lastSeq[p.publisher] = p.seq;
    });
    // A subscriber whose connection fails receives nothing: the timer below counts it all lost.
    setTimeout(() => {
      // Publishers that announced their end: exactly what the server accepted from them.
      let missing = 0;
      for (const [publisher, count] of Object.entries(accepted)) missing += Math.max(0, count - (received[publisher] ?? 0));
      // The others (a peer, or an end that never arrived): everything they meant to send.
      const unannounced = Math.max(0, PUBLISHERS - Object.keys(accepted).length);
      let receivedUnannounced = 0;
      for (const [publisher, count] of Object.entries(received)) if (accepted[publisher] === undefined) receivedUnannounced += count;
      missing += Math.max(0, unannounced * PER_PUBLISHER - receivedUnannounced);
      lost.add(missing);
      ws.close();
    }, (SETTLE + DURATION + GRACE) * 1000);
  }

  function publisher() {
    const id = exec.vu.idInTest;
    const ws = new WebSocket(connectUrl(`k6-pub-${id}`));
    let seq = 0;
    let echoed = 0;
    let limited = 0;
    let closed = false;
    let closedByPolicy = false;
    countPolicyCloses(ws, () => {
      closedByPolicy = true;
    });
    rateLimited.add(0);
    const padding = "x".repeat(Math.max(0, SIZE - 40));
    ws.addEventListener("close", () => {
      closed = true;
    });
    ws.addEventListener("message", (event) => {
      const data = textOf(event);
      const p = data === null ? null : parse(data);
      if (p?.kind === "rate_limited") {
        limited++;
        rateLimited.add(1);
      } else if (p?.kind === "L" && p.publisher === String(id)) echoed++;
    });
    // Once every message is answered (echo or rate_limited), or the connection is gone, or
    // half the grace period passed: say what the server accepted, then hang up.
    const finish = () => {
      const deadline = Date.now() + (GRACE * 1000) / 2;
      const settle = setInterval(() => {
        if (!closed && echoed + limited < seq && Date.now() < deadline) return;
        clearInterval(settle);
        if (!PEER) {
          // What never came back, the server dropped: rate-limited, or cut off by its 1008 close.
          const dropped = PER_PUBLISHER - echoed;
          if (dropped > 0 && (limited > 0 || closedByPolicy)) console.warn(`publisher ${id}: the server's rate limit dropped ${dropped} messages: ${RATE_LIMIT_ADVICE}`);
          announce(echoed);
        }
        ws.close();
      }, 20);
    };
    /** On its own connection: this one may be closed, or out of rate-limit tokens. */
    const announce = (/** @type {number} */ accepted) => {
      const end = new WebSocket(connectUrl(`k6-pub-${id}-end`));
      end.addEventListener("open", () => {
        end.send(`E|${id}|${accepted}`);
        setTimeout(() => end.close(), 200);
      });
    };
    ws.addEventListener("open", () => {
      const timer = setInterval(() => {
        // k6 throws on a send to a closed socket: stop at the close, count the rest as dropped.
        if (seq >= PER_PUBLISHER || closed || ws.readyState !== WebSocket.OPEN) {
          clearInterval(timer);
          finish();
          return;
        }
        ws.send(`L|${id}|${seq}|${Date.now()}|${padding}`);
        sent.add(1);
        seq++;
      }, (1000 * PUBLISHERS) / RATE);
    });
  }

  return { options, subscriber, publisher };
}

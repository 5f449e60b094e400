// k6 fan-out benchmark: S subscribers hold connections in one room while P publishers
// send RATE messages per second (in total) for DURATION seconds. Every message carries
// its send time; subscribers record end-to-end latency, deliveries, loss and order.
//
//   k6 run bench/fanout.js
//   k6 run -e URL=ws://127.0.0.1:3000/ws -e SUBSCRIBERS=5000 -e PUBLISHERS=4 -e RATE=200 -e DURATION=10 bench/fanout.js
//   k6 run -e PEER=1 -e URL=ws://127.0.0.1:4000/ bench/fanout.js      # against a reference peer
//
// Works with bunchat (JSON frames) and with the plain-text broadcast peers in bench/peers.
import { WebSocket } from "k6/websockets";
import { setInterval, clearInterval, setTimeout } from "k6/timers";
import { Counter, Trend } from "k6/metrics";
import exec from "k6/execution";

const URL = __ENV.URL || "ws://127.0.0.1:3000/ws";
const SUBSCRIBERS = Number(__ENV.SUBSCRIBERS || 100);
const PUBLISHERS = Number(__ENV.PUBLISHERS || 2);
const RATE = Number(__ENV.RATE || 50); // messages per second, all publishers together
const DURATION = Number(__ENV.DURATION || 10); // seconds of publishing
const ROOM = __ENV.ROOM || "k6";
const SIZE = Number(__ENV.SIZE || 64);
const SETTLE = Number(__ENV.SETTLE || 3); // seconds for subscribers to connect first
const GRACE = Number(__ENV.GRACE || 3); // seconds to wait for the last deliveries
const P99_MS = Number(__ENV.P99_MS || 250);

const PER_PUBLISHER = Math.round((RATE * DURATION) / PUBLISHERS);

const deliveries = new Counter("bunchat_deliveries");
const sent = new Counter("bunchat_sent");
const lost = new Counter("bunchat_lost_messages");
const outOfOrder = new Counter("bunchat_out_of_order");
const latency = new Trend("bunchat_latency", true);

export const options = {
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
  },
};

function connectUrl(name) {
  const sep = URL.includes("?") ? "&" : "?";
  return `${URL}${sep}name=${encodeURIComponent(name)}&room=${encodeURIComponent(ROOM)}`;
}

/** The load payload of a frame ("L|publisher|seq|sentAt|…"), from bunchat JSON or plain text. */
function payloadOf(data) {
  let text = data;
  if (typeof data === "string" && data.charAt(0) === "{") {
    const frame = JSON.parse(data);
    if (frame.type !== "message") return null;
    text = frame.text;
  }
  if (typeof text !== "string" || !text.startsWith("L|")) return null;
  const parts = text.split("|");
  return { publisher: parts[1], seq: Number(parts[2]), sentAt: Number(parts[3]) };
}

export function subscriber() {
  const ws = new WebSocket(connectUrl(`k6-sub-${exec.vu.idInTest}`));
  const lastSeq = {};
  let received = 0;
  ws.addEventListener("message", (event) => {
    const p = payloadOf(event.data);
    if (!p) return;
    latency.add(Date.now() - p.sentAt);
    deliveries.add(1);
    received++;
    const last = lastSeq[p.publisher];
    if (last !== undefined && p.seq <= last) outOfOrder.add(1);
    else lastSeq[p.publisher] = p.seq;
  });
  // A subscriber whose connection fails receives nothing: the timer below counts it all lost.
  setTimeout(() => {
    lost.add(Math.max(0, PUBLISHERS * PER_PUBLISHER - received));
    ws.close();
  }, (SETTLE + DURATION + GRACE) * 1000);
}

export function publisher() {
  const id = exec.vu.idInTest;
  const ws = new WebSocket(connectUrl(`k6-pub-${id}`));
  const padding = "x".repeat(Math.max(0, SIZE - 40));
  ws.addEventListener("open", () => {
    let seq = 0;
    const timer = setInterval(() => {
      if (seq >= PER_PUBLISHER) {
        clearInterval(timer);
        setTimeout(() => ws.close(), 500);
        return;
      }
      ws.send(`L|${id}|${seq}|${Date.now()}|${padding}`);
      sent.add(1);
      seq++;
    }, (1000 * PUBLISHERS) / RATE);
  });
}

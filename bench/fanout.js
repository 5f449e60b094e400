// @ts-check
// k6 fan-out benchmark: S subscribers in one room, P publishers at RATE messages/s for
// DURATION seconds; end-to-end latency, deliveries, loss, order, and what the server's
// rate limit dropped. The scenario itself is bench/k6/fanout-scenario.js.
//
// For k6 ≥ 1.6 (k6/websockets). On k6 0.50–1.5 run bench/fanout.k6-legacy.js instead.
//
//   k6 run bench/fanout.js                     # defaults pass against `bun run src/server.ts`
//   k6 run -e URL=ws://127.0.0.1:3000/ws -e SUBSCRIBERS=5000 -e PUBLISHERS=4 -e RATE=200 -e DURATION=10 bench/fanout.js
//   k6 run -e PEER=1 -e URL=ws://127.0.0.1:4000/ bench/fanout.js      # against a reference peer
//
// Past 20 messages/s per publisher, start the server with RATE_LIMIT=0.
import { WebSocket } from "k6/websockets";
import { fanout } from "./k6/fanout-scenario.js";

const scenario = fanout(WebSocket);
export const options = scenario.options;
export const subscriber = scenario.subscriber;
export const publisher = scenario.publisher;

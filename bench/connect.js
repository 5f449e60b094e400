// @ts-check
// k6 connection storm: connects at RATE per second for DURATION seconds, each held HOLD
// seconds; time to welcome and refusals. The scenario itself is bench/k6/connect-scenario.js.
//
// For k6 ≥ 1.6 (k6/websockets). On k6 0.50–1.5 run bench/connect.k6-legacy.js instead.
//
//   k6 run bench/connect.js                    # defaults pass against `bun run src/server.ts`
//   k6 run -e URL=ws://127.0.0.1:3000/ws -e RATE=500 -e DURATION=20 -e HOLD=10 bench/connect.js
//   k6 run -e PEER=1 -e URL=ws://127.0.0.1:4000/ bench/connect.js
import { WebSocket } from "k6/websockets";
import { connect } from "./k6/connect-scenario.js";

const scenario = connect(WebSocket);
export const options = scenario.options;
export default scenario.storm;

// @ts-check
// The k6 connection storm, shared by bench/connect.js (k6 ≥ 1.6) and
// bench/connect.k6-legacy.js (k6 0.50–1.5), as fanout-scenario.js is.
//
// Connects arrive at RATE per second for DURATION seconds; each one measures the time
// until the server's welcome (or, against a plain peer, until open), holds the connection
// HOLD seconds, then closes. Refusals (e.g. at MAX_CONNECTIONS) are counted, not hidden.
import { setTimeout } from "k6/timers";
import { Counter, Rate, Trend } from "k6/metrics";
import exec from "k6/execution";
import { textOf } from "./events.js";

/** @param {typeof import("k6/websockets").WebSocket} WebSocket k6's WebSocket class, from whichever module this k6 has. */
export function connect(WebSocket) {
  const URL = __ENV.URL || "ws://127.0.0.1:3000/ws";
  // 100 connects/s held 5 s: about 500 open at once, far below MAX_CONNECTIONS (10,000).
  const RATE = Number(__ENV.RATE || 100);
  const DURATION = Number(__ENV.DURATION || 10);
  const HOLD = Number(__ENV.HOLD || 5);
  const ROOM = __ENV.ROOM || "k6-storm";
  const PEER = __ENV.PEER === "1";
  const MAX_REFUSED = Number(__ENV.MAX_REFUSED || 0.01); // share of refused connects that still passes

  const timeToWelcome = new Trend("bunchat_time_to_welcome", true);
  const refused = new Rate("bunchat_refused");
  const connects = new Counter("bunchat_connects");

  const options = {
    scenarios: {
      storm: {
        executor: "constant-arrival-rate",
        rate: RATE,
        timeUnit: "1s",
        duration: `${DURATION}s`,
        preAllocatedVUs: Math.min(RATE * (HOLD + 2), 5000),
        maxVUs: RATE * (HOLD + 5),
      },
    },
    thresholds: {
      bunchat_refused: [`rate<=${MAX_REFUSED}`],
      bunchat_time_to_welcome: ["p(95)<1000"],
    },
  };

  function storm() {
    const name = `k6-c-${exec.vu.idInTest}-${exec.scenario.iterationInTest}`;
    const sep = URL.includes("?") ? "&" : "?";
    const began = Date.now();
    const ws = new WebSocket(`${URL}${sep}name=${name}&room=${ROOM}`);
    let welcomed = false;
    const welcome = () => {
      if (welcomed) return;
      welcomed = true;
      timeToWelcome.add(Date.now() - began);
      refused.add(false);
      connects.add(1);
      setTimeout(() => ws.close(), HOLD * 1000);
    };
    ws.addEventListener("open", () => {
      if (PEER) welcome();
    });
    ws.addEventListener("message", (event) => {
      if (!welcomed && textOf(event)?.startsWith('{"type":"welcome"')) welcome();
    });
    const refusedNow = () => {
      if (welcomed) return;
      welcomed = true;
      refused.add(true);
    };
    ws.addEventListener("error", refusedNow);
    ws.addEventListener("close", refusedNow);
  }

  return { options, storm };
}

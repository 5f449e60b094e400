// @ts-check
// bench/fanout.js for k6 0.50–1.5, where the WebSocket API was k6/experimental/websockets
// (the same API; k6 1.6 made it k6/websockets). Everything else is shared.
import { WebSocket } from "k6/experimental/websockets";
import { fanout } from "./k6/fanout-scenario.js";

const scenario = fanout(WebSocket);
export const options = scenario.options;
export const subscriber = scenario.subscriber;
export const publisher = scenario.publisher;

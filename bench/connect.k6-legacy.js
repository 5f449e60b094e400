// @ts-check
// bench/connect.js for k6 0.50–1.5, where the WebSocket API was k6/experimental/websockets
// (the same API; k6 1.6 made it k6/websockets). Everything else is shared.
import { WebSocket } from "k6/experimental/websockets";
import { connect } from "./k6/connect-scenario.js";

const scenario = connect(WebSocket);
export const options = scenario.options;
export default scenario.storm;

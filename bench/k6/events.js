// @ts-check
// What k6 hands a WebSocket listener, read the same way on every k6 since 0.50: the
// listener gets a MessageEvent or an ErrorEvent (one union in @types/k6), and a close
// event carries its code only in newer releases (older ones say it in the error text).

/** @typedef {import("k6/websockets").MessageEvent | import("k6/websockets").ErrorEvent} K6Event */

export const RATE_LIMIT_ADVICE = "start it with RATE_LIMIT=0 for load tests";

/** The text of a received frame, or null (a binary frame, or not a message event). */
export function textOf(/** @type {K6Event} */ event) {
  return "data" in event && typeof event.data === "string" ? event.data : null;
}

/** Whether the server closed the connection with 1008 (policy: bunchat's rate-abuse close). */
export function isPolicyClose(/** @type {K6Event} */ event) {
  if ("code" in event && event.code === 1008) return true;
  return "error" in event && /\bclose 1008\b/.test(event.error);
}

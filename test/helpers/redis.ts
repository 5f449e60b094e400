// A real redis-server per test file: its own free port, persistence off, stopped after.
export { RedisServer } from "../../bench/lib/redis-server.ts";
export { freePort } from "../../bench/lib/process.ts";

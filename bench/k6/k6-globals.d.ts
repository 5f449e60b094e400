// What k6 provides that @types/k6 leaves out, for `bun run typecheck` (tsconfig.k6.json).

declare global {
  // k6 prints these to its log; @types/k6 expects them from the DOM lib, which k6 is not.
  var console: {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
    debug(...data: unknown[]): void;
  };
}

export {};

// The publish hook (PUBLISH_HOOK_URL): before a person's message is stored, the backend is
// asked, synchronously, what to do with it:
//   POST <url>  {"type":"room","room":"lobby","from":"alice","person":"a…","text":"…","ts":…}
//               {"type":"private","to":"bob",…}
//   answer      {"result":"allow"} | {"result":"reject","reason":"…"} | {"result":"replace","text":"…"}
//               (or 204: allow)
// Within PUBLISH_HOOK_TIMEOUT milliseconds. A timeout, a network error, a non-2xx status or
// an answer that is none of those is a failure, and PUBLISH_HOOK_FAILURE says what then:
// "closed" refuses the message (check_unavailable), "open" lets it through. Signed like the
// webhooks when WEBHOOK_SECRET is set.
import type { PublishCheck, Verdict } from "../engine/gate.ts";
import type { PendingMessage } from "../engine/ports.ts";
import type { Logger } from "../obs/log.ts";
import { Histogram, LabelledCounter, type Metrics } from "../obs/metrics.ts";
import { validateText } from "../protocol/decode.ts";
import { signedPost, withoutCredentials } from "./signature.ts";
import { ThrottledWarning } from "./throttled-log.ts";

export interface PublishHookOptions {
  url: string;
  timeoutMs: number;
  /** true: a failed check lets the message through; false: refuses it. */
  failOpen: boolean;
  /** WEBHOOK_SECRET: sign the requests ("" = unsigned). */
  secret: string;
  maxTextLength: number;
  userAgent: string;
  metrics: Metrics;
  log: Logger;
}

const ALLOW: Verdict = { result: "allow" };
/**
 * Requests to the hook in flight at once; more wait their turn (within their timeout). A
 * flood of checks on thousands of sockets costs more CPU per check than on a few dozen
 * reused keep-alive connections, and answers no sooner.
 */
const MAX_IN_FLIGHT = 64;
const UNAVAILABLE: Verdict = { result: "unavailable" };
/** Longest rejection reason passed on to the sender. */
const MAX_REASON = 200;

export class PublishHook implements PublishCheck {
  readonly answers = new LabelledCounter("bunchat_publish_hook_total", "publish hook checks, by result (allow, reject, replace, failed)", "result");
  readonly seconds = new Histogram("bunchat_publish_hook_seconds", "publish hook round trip", [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  private readonly failures: ThrottledWarning;
  /** For logs: without any user:password the URL may carry. */
  private readonly where: string;

  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly options: PublishHookOptions) {
    this.where = withoutCredentials(options.url);
    options.metrics.add(this.answers);
    options.metrics.add(this.seconds);
    this.failures = new ThrottledWarning(options.log, "publish_hook_failed");
  }

  async check(message: PendingMessage, personId: string): Promise<Verdict> {
    const o = this.options;
    const body = JSON.stringify(
      message.kind === "room"
        ? { type: "room", room: message.room, from: message.from, person: personId, text: message.text, ts: message.ts }
        : { type: "private", to: message.to, from: message.from, person: personId, text: message.text, ts: message.ts },
    );
    const started = performance.now();
    // The timeout covers the wait for a turn as well: it is the sender's wait.
    const signal = AbortSignal.timeout(o.timeoutMs);
    let answer: unknown;
    let holding = false;
    try {
      await this.turn(signal);
      holding = true;
      const res = await signedPost(o.url, body, { ...o, signal });
      const text = await res.text();
      if (res.status === 204) answer = { result: "allow" };
      else if (!res.ok) return this.failed(`status ${res.status}`);
      else answer = JSON.parse(text);
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      return this.failed(timedOut ? `no answer within ${o.timeoutMs} ms` : error instanceof SyntaxError ? "the answer is not JSON" : String(error));
    } finally {
      if (holding) this.done();
      this.seconds.observe((performance.now() - started) / 1000);
    }
    return this.verdict(answer);
  }

  /** Wait for one of the MAX_IN_FLIGHT places (or the timeout, which throws). */
  private turn(signal: AbortSignal): Promise<void> {
    if (this.inFlight < MAX_IN_FLIGHT) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const go = () => {
        signal.removeEventListener("abort", giveUp);
        this.inFlight++;
        resolve();
      };
      const giveUp = () => {
        const at = this.waiting.indexOf(go);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", giveUp, { once: true });
      this.waiting.push(go);
    });
  }

  /** A request ended: its place goes to the next waiting one. */
  private done(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }

  private verdict(answer: unknown): Verdict {
    const a = (typeof answer === "object" && answer !== null ? answer : {}) as Record<string, unknown>;
    switch (a.result) {
      case "allow":
        this.answers.inc("allow");
        return ALLOW;
      case "reject": {
        this.answers.inc("reject");
        const reason = typeof a.reason === "string" ? a.reason.slice(0, MAX_REASON) : "";
        return { result: "reject", reason };
      }
      case "replace":
        try {
          const text = validateText(a.text, { maxTextLength: this.options.maxTextLength });
          this.answers.inc("replace");
          return { result: "replace", text };
        } catch (error) {
          return this.failed(`the replacement text is not valid: ${error instanceof Error ? error.message : String(error)}`);
        }
      default:
        return this.failed('the answer has no "result" of allow, reject or replace');
    }
  }

  private failed(why: string): Verdict {
    this.answers.inc("failed");
    this.failures.warn({ url: this.where, why, policy: this.options.failOpen ? "open" : "closed" });
    return this.options.failOpen ? ALLOW : UNAVAILABLE;
  }
}

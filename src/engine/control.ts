// Cluster control: a request that every node acts on (kick, ban, announce, who is this
// person), with each node's answer. It rides the broker like any frame: requests on one
// topic every node subscribes to at start, answers on a topic of the asking node's own.
// The asking node acts first, synchronously, so when it answers its caller its own
// sockets already reflect the request; then it waits for the other live nodes (the
// directory knows which) for at most `timeoutMs`, and says which ones did not answer.
// Alone (no Redis), a request never leaves the process.
import type { Logger } from "../obs/log.ts";
import type { Broker, Deliver, Directory } from "./ports.ts";
import { topics } from "./topics.ts";

export type ControlArgs = Record<string, unknown>;
export type ControlHandler = (args: ControlArgs) => unknown;

export interface Answer {
  node: string;
  result: unknown;
}

export interface Gathered {
  /** This node's answer first, then the others' as they came. */
  answers: Answer[];
  /** Live nodes that did not answer in time. */
  missing: string[];
}

interface Request {
  /** Answers come back under this id; "" when told, wanting none. */
  q: string;
  from: string;
  op: string;
  args: ControlArgs;
}

interface Reply {
  q: string;
  node: string;
  result: unknown;
}

interface Pending {
  gathered: Gathered;
  waiting: Set<string>;
  done: () => void;
}

export class ClusterControl {
  private readonly handlers = new Map<string, ControlHandler>();
  private readonly pending = new Map<string, Pending>();
  private readonly answersTopic: string;

  constructor(
    private readonly broker: Broker,
    private readonly directory: Directory,
    readonly node: string,
    private readonly log: Logger,
    private readonly timeoutMs = 2000,
  ) {
    this.answersTopic = topics.answers(node);
  }

  /** What this node does for `op`; the result (JSON) is its answer. */
  handle(op: string, handler: ControlHandler): void {
    this.handlers.set(op, handler);
  }

  /** Control topics go here, everything else to `deliver` (the engine). */
  route(deliver: Deliver): Deliver {
    return (topic, frame, seq) => (topics.isControl(topic) ? this.receive(topic, frame) : deliver(topic, frame, seq));
  }

  async start(): Promise<void> {
    await Promise.all([this.broker.subscribe(topics.control), this.broker.subscribe(this.answersTopic)]);
  }

  stop(): void {
    this.broker.unsubscribe(topics.control);
    this.broker.unsubscribe(this.answersTopic);
    for (const p of this.pending.values()) p.done();
  }

  /**
   * Act here, then on every other live node. Rejects (DirectoryUnavailable) when the live
   * nodes cannot be known, before anything was done.
   */
  async ask(op: string, args: ControlArgs): Promise<Gathered> {
    const others = await this.directory.otherNodes();
    const q = crypto.randomUUID();
    const gathered: Gathered = { answers: [{ node: this.node, result: this.run(op, args) }], missing: [] };
    const waiting = new Set(others);
    const answered =
      waiting.size === 0
        ? Promise.resolve(gathered)
        : new Promise<Gathered>((resolve) => {
            const timer = setTimeout(() => finish(), this.timeoutMs);
            const finish = () => {
              clearTimeout(timer);
              this.pending.delete(q);
              gathered.missing = [...waiting].sort();
              resolve(gathered);
            };
            this.pending.set(q, { gathered, waiting, done: finish });
          });
    // Sent even when nobody else is known: a node starting right now still hears it.
    this.broadcast({ q, from: this.node, op, args });
    return answered;
  }

  /**
   * Tell every other node, wanting no answer and without acting here (the caller already
   * did): no lookup of the live nodes, nothing waits.
   */
  tell(op: string, args: ControlArgs): void {
    this.broadcast({ q: "", from: this.node, op, args });
  }

  private broadcast(request: Request): void {
    this.broker.broadcast(topics.control, JSON.stringify(request));
  }

  private run(op: string, args: ControlArgs): unknown {
    const handler = this.handlers.get(op);
    if (!handler) return { error: `unknown request ${op}` };
    try {
      return handler(args) ?? null;
    } catch (error) {
      this.log.error("control_failed", { op, error: String(error) });
      return { error: "failed" };
    }
  }

  private receive(topic: string, frame: string): void {
    let message: Request | Reply;
    try {
      message = JSON.parse(frame) as Request | Reply;
    } catch {
      return;
    }
    if (topic === topics.control) {
      const request = message as Request;
      // Our own request comes back through the bus: we acted on it already.
      if (request.from === this.node || typeof request.op !== "string") return;
      const result = this.run(request.op, request.args ?? {});
      if (request.q === "") return; // told, not asked
      const reply: Reply = { q: request.q, node: this.node, result };
      this.broker.broadcast(topics.answers(request.from), JSON.stringify(reply));
      return;
    }
    if (topic !== this.answersTopic) return;
    const reply = message as Reply;
    const pending = this.pending.get(reply.q);
    if (!pending) return; // answered after the timeout
    pending.gathered.answers.push({ node: reply.node, result: reply.result });
    pending.waiting.delete(reply.node);
    if (pending.waiting.size === 0) pending.done();
  }
}

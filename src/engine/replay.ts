// Catch-up for a connection entering a room: the history it missed (after `since`) or
// the room's recent tail, read so that it meets the live stream with no gap and no
// duplicate. The caller has already subscribed this node to the room (so every later
// message is delivered here) and sends the replay and subscribes the socket in one
// synchronous step after this returns. Between the history read and that step:
//   - the node may deliver newer messages (delivered > last): read on from `last`;
//   - the read may include messages this node has not delivered yet (delivered < last,
//     Redis delivers on another connection than it reads on): wait for the live stream
//     to reach `last`, or the socket would get them twice.
// A replay that stops at its page size says `more`; one with a hole says `incomplete`.
import type { HistoryItem } from "../protocol/frames.ts";
import type { Broker } from "./ports.ts";
import type { TailCache } from "./tail-cache.ts";
import { topics } from "./topics.ts";

/** Most messages one replay (welcome, joined) carries; the client asks again for more. */
export const REPLAY_MAX = 1000;
/** How long a replay waits for the live stream to reach what it read. */
const MEET_TIMEOUT_MS = 2000;
/** Rounds of read-on / wait before giving up on meeting exactly (a busy room). */
const MAX_ROUNDS = 20;

export interface ReplayRequest {
  room: string;
  /** Replay after this id; undefined: the room's recent tail. */
  since: number | undefined;
  /** The epoch the client's `since` belongs to, when it told us. */
  epoch: string | undefined;
  /** Messages in a tail replay. */
  tail: number;
}

export interface Replay {
  messages: HistoryItem[];
  /** Not everything: newer messages follow (since), or older ones precede (tail). */
  more: boolean;
  /** Messages after `since` are gone (trimmed, or lost with the broker's old epoch). */
  incomplete: boolean;
  epoch: string;
}

export async function catchUp(broker: Broker, request: ReplayRequest, stillWanted: () => boolean, tails?: TailCache): Promise<Replay> {
  const { room } = request;
  const epoch = broker.epoch();
  const replay: Replay = { messages: [], more: false, incomplete: false, epoch };
  if (!broker.keepsHistory) return replay;
  const topic = topics.room(room);
  // A `since` from an epoch whose history is gone means nothing here: replay what there is.
  const lostEpoch = request.since !== undefined && request.epoch !== undefined && request.epoch !== epoch;
  const since = lostEpoch ? 0 : request.since;
  const first = since === undefined
    ? await (tails ? tails.read(room, request.tail) : broker.before(room, undefined, request.tail))
    : await broker.after(room, since, REPLAY_MAX);
  // A copy: the page may be shared with other joiners (TailCache).
  replay.messages = [...first.messages];
  // A tail that filled its page leaves older messages behind; a since-replay newer ones.
  replay.more = first.more;
  let cutShort = since !== undefined && first.more;
  // Without a message read, the replay stands at `since` — but never above what this node
  // has delivered (a `since` beyond the room's newest id would wait for ids to come).
  let last = replay.messages.at(-1)?.id ?? Math.min(since ?? 0, broker.delivered(topic));
  for (let round = 0; round < MAX_ROUNDS && !cutShort && stillWanted(); round++) {
    const delivered = broker.delivered(topic);
    if (delivered > last) {
      // A since-replay stays within one page in all; a tail reads on a page at a time.
      const limit = since === undefined ? REPLAY_MAX : Math.max(1, REPLAY_MAX - replay.messages.length);
      const extra = await broker.after(room, last, limit);
      if (extra.messages.length === 0) break;
      replay.messages.push(...extra.messages);
      last = extra.messages.at(-1)!.id;
      if (extra.more) {
        cutShort = true;
        replay.more = true;
      }
    } else if (delivered < last) {
      if (!(await broker.deliveredUpTo(topic, last, MEET_TIMEOUT_MS))) break;
    } else {
      break;
    }
  }
  if (since !== undefined) {
    const firstId = replay.messages[0]?.id;
    const hole = firstId !== undefined ? firstId > since + 1 : broker.delivered(topic) > since;
    replay.incomplete = lostEpoch || hole;
  }
  return replay;
}

// history(): an async iterator over older pages of a room or a private conversation,
// newest page first. Each page is in id order (oldest first), as the server sends it;
// the next page asks for what lies before the oldest id of the last one.
import type { HistoryItem } from "../protocol/frames.ts";

export type HistoryTarget = { room: string } | { with: string };

export interface HistoryOptions {
  /** Messages per page, 1–1000 (default 50). */
  pageSize?: number;
  /** Start below this id (default: from the newest message). */
  before?: number;
}

export interface HistoryPage {
  messages: HistoryItem[];
  more: boolean;
}

/** `fetchPage` asks the server for one page (a `history` request). */
export async function* historyPages(
  fetchPage: (before: number | undefined, limit: number) => Promise<HistoryPage>,
  options: HistoryOptions = {},
): AsyncGenerator<HistoryItem[], void, undefined> {
  const limit = Math.min(1000, Math.max(1, Math.floor(options.pageSize ?? 50)));
  let before = options.before;
  for (;;) {
    const page = await fetchPage(before, limit);
    const oldest = page.messages[0];
    if (oldest === undefined) return;
    yield page.messages;
    if (!page.more) return;
    before = oldest.id;
  }
}

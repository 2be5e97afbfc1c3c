// The order book kept exact from the `book.{symbol}` channel: a snapshot, then diffs applied
// in sequence (the procedure the README documents); a gap means the book must be re-synced.

import { type Dec, add, ceilTo, cmp, dec, floorTo, isZero } from "./decimal";

export type Level = [price: string, quantity: string];

export type Book = {
  /** The sequence number the book is as of; -1 before the first snapshot. */
  seq: number;
  /** Price (as the server wrote it) -> quantity. */
  bids: Map<string, string>;
  asks: Map<string, string>;
};

export type Snapshot = { seq: number; bids: Level[]; asks: Level[] };
export type Diff = {
  first_seq: number;
  last_seq: number;
  changes: [side: string, price: string, quantity: string][];
};

export const emptyBook = (): Book => ({ seq: -1, bids: new Map(), asks: new Map() });

export function fromSnapshot(s: Snapshot): Book {
  return { seq: s.seq, bids: new Map(s.bids), asks: new Map(s.asks) };
}

/** What applying a diff did: applied it, ignored it (already covered), or found a gap. */
export type DiffResult = "applied" | "stale" | "gap";

/** Applies a diff in place, following the sequence check. */
export function applyDiff(book: Book, d: Diff): DiffResult {
  if (book.seq < 0) return "gap";
  if (d.last_seq <= book.seq) return "stale";
  if (d.first_seq !== book.seq + 1) return "gap";
  for (const [side, price, quantity] of d.changes) {
    const levels = side === "BUY" ? book.bids : book.asks;
    if (isZero(dec(quantity))) levels.delete(price);
    else levels.set(price, quantity);
  }
  book.seq = d.last_seq;
  return "applied";
}

/** Parsed prices by their text: a busy book re-sorts every frame, mostly the same prices. */
const prices = new Map<string, Dec>();

function price(text: string): Dec {
  let d = prices.get(text);
  if (!d) {
    if (prices.size >= 100_000) prices.clear();
    d = dec(text);
    prices.set(text, d);
  }
  return d;
}

/** Levels best first: bids high to low, asks low to high. */
export function sorted(levels: Map<string, string>, side: "bids" | "asks"): Level[] {
  const parsed = [...levels].map(([p, q]) => ({ p, q, d: price(p) }));
  parsed.sort((a, b) => (side === "bids" ? cmp(b.d, a.d) : cmp(a.d, b.d)));
  return parsed.map(({ p, q }) => [p, q]);
}

export type GroupedLevel = { price: Dec; quantity: Dec; cumulative: Dec };

/**
 * Levels best first, merged into buckets of `step` (bids down to a multiple of it, asks up, so
 * that a bucket never shows a better price than it holds), with cumulative quantity, at most
 * `depth` of them.
 */
export function grouped(
  levels: Map<string, string>,
  side: "bids" | "asks",
  step: string,
  depth: number,
): GroupedLevel[] {
  const s = dec(step);
  const out: GroupedLevel[] = [];
  let total: Dec = { v: 0n, s: 0 };
  for (const [p, q] of sorted(levels, side)) {
    const bucket = side === "bids" ? floorTo(price(p), s) : ceilTo(price(p), s);
    const quantity = dec(q);
    total = add(total, quantity);
    const last = out[out.length - 1];
    if (last && cmp(last.price, bucket) === 0) {
      last.quantity = add(last.quantity, quantity);
      last.cumulative = total;
    } else {
      if (out.length === depth) break;
      out.push({ price: bucket, quantity, cumulative: total });
    }
  }
  return out;
}

/** The book as `[price, quantity]` lists, best first, as `GET .../depth` shows it. */
export function levels(book: Book): { bids: Level[]; asks: Level[] } {
  return { bids: sorted(book.bids, "bids"), asks: sorted(book.asks, "asks") };
}

"use client";

import { useMemo, useState } from "react";
import { grouped, type GroupedLevel } from "@/lib/book";
import { dec, mul, toPlain, sub, places } from "@/lib/decimal";
import { fmt } from "@/lib/format";
import { store } from "@/lib/store";
import { useSelect } from "@/lib/use";

const DEPTHS = [10, 20, 50];
const GROUPS = [1n, 10n, 100n, 1000n];

/** The book ladder: asks above, bids below, cumulative depth bars, click a level for its price. */
export default function OrderBook() {
  const symbol = useSelect((s) => s.symbol);
  const seq = useSelect((s) => s.book.seq);
  const book = useSelect((s) => s.book);
  const rules = useSelect((s) => s.rules());
  const [depth, setDepth] = useState(10);
  const [groupIndex, setGroupIndex] = useState(0);
  const tick = rules?.tick_size ?? "0.01";
  const lot = rules?.lot_size ?? "0.01";
  const step = toPlain(mul(dec(tick), { v: GROUPS[groupIndex], s: 0 }));

  const { asks, bids, max } = useMemo(() => {
    const asks = grouped(book.asks, "asks", step, depth);
    const bids = grouped(book.bids, "bids", step, depth);
    const last = (l: GroupedLevel[]) => (l.length ? Number(toPlain(l[l.length - 1].cumulative)) : 0);
    return { asks, bids, max: Math.max(last(asks), last(bids), Number.MIN_VALUE) };
    // `seq` changes whenever the book does (it is mutated in place).
  }, [book, seq, step, depth]);

  const spread = asks.length && bids.length ? sub(asks[0].price, bids[0].price) : null;
  const stepPlaces = Math.max(places(step), 0);
  const row = (l: GroupedLevel, side: "bid" | "ask") => {
    const price = toPlain(l.price);
    // Bar widths are drawing only.
    const width = `${(Number(toPlain(l.cumulative)) / max) * 100}%`;
    return (
      <button
        key={`${side}${price}`}
        type="button"
        className="relative grid h-5 w-full grid-cols-3 px-2 text-right leading-5 hover:bg-[#1d2230]"
        onClick={() => store.pick(price)}
        data-testid={`book-${side}`}
        data-price={price}
        title={`Use ${price} in the order form`}
      >
        <span
          className={`absolute inset-y-0 right-0 ${side === "bid" ? "bg-up/15" : "bg-down/15"}`}
          style={{ width }}
        />
        <span className={`num relative text-left ${side === "bid" ? "text-up" : "text-down"}`}>
          {fmt(l.price, stepPlaces ? step : "1")}
        </span>
        <span className="num relative">{fmt(l.quantity, lot)}</span>
        <span className="num relative text-dim">{fmt(l.cumulative, lot)}</span>
      </button>
    );
  };

  return (
    <section className="panel flex flex-col" aria-label="Order book" data-testid="book" data-seq={seq}>
      <div className="panel-title">
        <span>Order book</span>
        <label className="ml-auto flex items-center gap-1 normal-case">
          <span className="sr-only">Depth</span>
          <select
            className="bg-transparent"
            value={depth}
            onChange={(e) => setDepth(Number(e.target.value))}
            aria-label="Depth"
          >
            {DEPTHS.map((d) => (
              <option key={d} value={d}>
                {d} levels
              </option>
            ))}
          </select>
        </label>
        <label className="flex items-center gap-1 normal-case">
          <select
            className="bg-transparent"
            value={groupIndex}
            onChange={(e) => setGroupIndex(Number(e.target.value))}
            aria-label="Price grouping"
          >
            {GROUPS.map((g, i) => (
              <option key={String(g)} value={i}>
                {toPlain(mul(dec(tick), { v: g, s: 0 }))}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="grid grid-cols-3 px-2 py-1 text-right text-[11px] text-dim">
        <span className="text-left">Price ({rules?.quote})</span>
        <span>Size ({rules?.base})</span>
        <span>Total</span>
      </div>
      <div className="flex flex-col-reverse" style={{ minHeight: `${depth * 20}px` }} data-testid="asks">
        {asks.map((l) => row(l, "ask"))}
      </div>
      <div className="num border-y border-edge px-2 py-1 text-dim" data-testid="spread">
        {symbol} spread {spread ? fmt(spread, tick) : "–"}
      </div>
      <div className="flex flex-col" style={{ minHeight: `${depth * 20}px` }} data-testid="bids">
        {bids.map((l) => row(l, "bid"))}
      </div>
    </section>
  );
}

"use client";

import { clock, fmt } from "@/lib/format";
import { useSelect } from "@/lib/use";

/** The market's trades, newest first, coloured by the taker's side. */
export default function TradeTape() {
  const trades = useSelect((s) => s.trades);
  const rules = useSelect((s) => s.rules());
  const tick = rules?.tick_size ?? "0.01";
  const lot = rules?.lot_size ?? "0.01";
  return (
    <section className="panel flex min-h-0 flex-col" aria-label="Trades">
      <div className="panel-title">Trades</div>
      <div className="grid grid-cols-3 px-2 py-1 text-right text-[11px] text-dim">
        <span className="text-left">Price</span>
        <span>Size</span>
        <span>Time</span>
      </div>
      <div className="h-[240px] overflow-y-auto" data-testid="tape">
        {trades.map((t) => (
          <div
            key={t.trade_id}
            className="grid h-5 grid-cols-3 px-2 text-right leading-5"
            data-testid="tape-trade"
            data-side={t.taker_side}
          >
            <span className={`num text-left ${t.taker_side === "BUY" ? "text-up" : "text-down"}`}>
              {fmt(t.price, tick)}
            </span>
            <span className="num">{fmt(t.quantity, lot)}</span>
            <span className="num text-dim">{clock(t.time)}</span>
          </div>
        ))}
      </div>
    </section>
  );
}

"use client";

import { store } from "@/lib/store";
import { useSelect } from "@/lib/use";
import { fmt, pct } from "@/lib/format";

/** Every symbol with its last price and 24h change; choosing one switches the screen. */
export default function MarketList() {
  const symbols = useSelect((s) => s.symbols);
  const current = useSelect((s) => s.symbol);
  useSelect((s) => s.version);
  return (
    <section className="panel h-full" aria-label="Markets">
      <div className="panel-title">Markets</div>
      <table className="w-full">
        <thead className="text-[11px] text-dim">
          <tr>
            <th className="px-2 py-1 text-left font-normal">Symbol</th>
            <th className="px-2 py-1 text-right font-normal">Last</th>
            <th className="px-2 py-1 text-right font-normal">24h</th>
          </tr>
        </thead>
        <tbody>
          {symbols.map((s) => {
            const t = store.tickers[s.symbol];
            const up = !t?.change_percent_24h?.startsWith("-");
            return (
              <tr
                key={s.symbol}
                data-testid={`market-${s.symbol}`}
                aria-selected={s.symbol === current}
                className={`cursor-pointer hover:bg-[#1d2230] ${s.symbol === current ? "bg-[#1d2230]" : ""}`}
                onClick={() => store.select(s.symbol)}
              >
                <td className="px-2 py-1 whitespace-nowrap">
                  <a
                    href={`?symbol=${s.symbol}`}
                    onClick={(e) => {
                      e.preventDefault();
                      store.select(s.symbol);
                    }}
                  >
                    {s.symbol}
                  </a>
                </td>
                <td className="num px-2 py-1 text-right" data-testid={`market-last-${s.symbol}`}>
                  {fmt(t?.last_price, s.tick_size)}
                </td>
                <td className={`num px-2 py-1 text-right ${up ? "text-up" : "text-down"}`}>
                  {t?.change_percent_24h == null ? "–" : pct(t.change_percent_24h)}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

"use client";

import { useState } from "react";
import type { Order } from "@/lib/api";
import { clock, fmt, group } from "@/lib/format";
import { store } from "@/lib/store";
import { useSelect } from "@/lib/use";
import { CANCEL_ALL_SHORTCUT } from "@/lib/keys";

const TABS = ["Balances", "Open orders", "Order history", "Fills"] as const;
type Tab = (typeof TABS)[number];

const th = "px-2 py-1 text-right font-normal";
const td = "num px-2 py-0.5 text-right";

function rulesOf(symbol: string) {
  return store.symbols.find((s) => s.symbol === symbol);
}

function OrderRow({ o, cancel }: { o: Order; cancel?: boolean }) {
  const r = rulesOf(o.symbol);
  const tick = r?.tick_size ?? "0.01";
  const lot = r?.lot_size ?? "0.01";
  const [error, setError] = useState<string | null>(null);
  return (
    <tr data-testid={cancel ? "open-order" : "history-order"} data-order-id={o.order_id}>
      <td className={`${td} text-left text-dim`}>{clock(o.created_at)}</td>
      <td className="px-2 py-0.5">{o.symbol}</td>
      <td className={`px-2 py-0.5 ${o.side === "BUY" ? "text-up" : "text-down"}`}>{o.side}</td>
      <td className="px-2 py-0.5">{o.type}</td>
      <td className={td}>{o.price ? fmt(o.price, tick) : "market"}</td>
      <td className={td}>{o.quantity ? fmt(o.quantity, lot) : `${o.quote_quantity} ${r?.quote ?? ""}`}</td>
      <td className={td}>{fmt(o.filled_quantity, lot)}</td>
      <td className={td}>{o.average_price ? fmt(o.average_price, tick) : "–"}</td>
      <td className="px-2 py-0.5">{o.status === "CANCELLED" && o.cancel_reason ? `CANCELLED (${o.cancel_reason})` : o.status}</td>
      <td className="px-2 py-0.5 text-right">
        {cancel && (
          <button
            className="tab text-down"
            onClick={() => store.cancel(o.order_id).catch((e) => setError((e as Error).message))}
            data-testid="cancel-order"
            title={error ?? `Cancel order ${o.order_id}`}
          >
            Cancel
          </button>
        )}
      </td>
    </tr>
  );
}

const orderHead = (
  <tr>
    <th className={`${th} text-left`}>Time</th>
    <th className={`${th} text-left`}>Symbol</th>
    <th className={`${th} text-left`}>Side</th>
    <th className={`${th} text-left`}>Type</th>
    <th className={th}>Price</th>
    <th className={th}>Quantity</th>
    <th className={th}>Filled</th>
    <th className={th}>Avg price</th>
    <th className={`${th} text-left`}>Status</th>
    <th className={th} />
  </tr>
);

function OrderTable({ orders, cancel, testId }: { orders: Order[]; cancel?: boolean; testId: string }) {
  return (
    <table className="w-full" data-testid={testId}>
      <thead className="text-[11px] text-dim">{orderHead}</thead>
      <tbody>
        {orders.map((o) => (
          <OrderRow key={o.order_id} o={o} cancel={cancel} />
        ))}
      </tbody>
    </table>
  );
}

/** Balances, open orders, order history and fills, live from the private `orders` channel. */
export default function AccountPanel() {
  const account = useSelect((s) => s.account);
  const balances = useSelect((s) => s.balances);
  const open = useSelect((s) => s.openOrders);
  const history = useSelect((s) => s.history);
  const fills = useSelect((s) => s.fills);
  const [tab, setTab] = useState<Tab>("Balances");
  const [error, setError] = useState<string | null>(null);

  return (
    <section className="panel" aria-label="Account">
      <div className="panel-title" role="tablist">
        {TABS.map((t) => (
          <button key={t} role="tab" className="tab normal-case" aria-selected={t === tab} onClick={() => setTab(t)}>
            {t}
            {t === "Open orders" && account ? ` (${open.length})` : ""}
          </button>
        ))}
        {tab === "Open orders" && account && open.length > 0 && (
          <button
            className="tab ml-auto text-down normal-case"
            onClick={() => store.cancelAll().catch((e) => setError((e as Error).message))}
            title={`Cancel all open orders (${CANCEL_ALL_SHORTCUT})`}
            data-testid="cancel-all"
          >
            Cancel all ({CANCEL_ALL_SHORTCUT})
          </button>
        )}
      </div>
      {error && <p className="px-2 text-down">{error}</p>}
      <div className="h-[220px] overflow-auto">
        {!account ? (
          <p className="p-3 text-dim">Sign in with an API key to see balances and orders. Market data needs no key.</p>
        ) : tab === "Balances" ? (
          <table className="w-full" data-testid="balances">
            <thead className="text-[11px] text-dim">
              <tr>
                <th className={`${th} text-left`}>Asset</th>
                <th className={th}>Available</th>
                <th className={th}>Reserved</th>
                <th className={th}>Total</th>
              </tr>
            </thead>
            <tbody>
              {balances.map((b) => (
                <tr key={b.asset} data-testid={`balance-${b.asset}`}>
                  <td className="px-2 py-0.5">{b.asset}</td>
                  <td className={td} data-testid={`available-${b.asset}`}>{group(b.available)}</td>
                  <td className={td}>{group(b.reserved)}</td>
                  <td className={td}>{group(b.total)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : tab === "Open orders" ? (
          <OrderTable orders={open} cancel testId="open-orders" />
        ) : tab === "Order history" ? (
          <OrderTable orders={history} testId="order-history" />
        ) : (
          <table className="w-full" data-testid="fills">
            <thead className="text-[11px] text-dim">
              <tr>
                <th className={`${th} text-left`}>Time</th>
                <th className={`${th} text-left`}>Symbol</th>
                <th className={`${th} text-left`}>Side</th>
                <th className={th}>Price</th>
                <th className={th}>Quantity</th>
                <th className={th}>Fee</th>
                <th className={`${th} text-left`}>Role</th>
              </tr>
            </thead>
            <tbody>
              {fills.map((f) => {
                const r = rulesOf(f.symbol);
                return (
                  <tr key={`${f.trade_id}-${f.order_id}`} data-testid="fill">
                    <td className={`${td} text-left text-dim`}>{clock(f.time)}</td>
                    <td className="px-2 py-0.5">{f.symbol}</td>
                    <td className={`px-2 py-0.5 ${f.side === "BUY" ? "text-up" : "text-down"}`}>{f.side}</td>
                    <td className={td}>{fmt(f.price, r?.tick_size ?? "0.01")}</td>
                    <td className={td}>{fmt(f.quantity, r?.lot_size ?? "0.01")}</td>
                    <td className={td}>
                      {group(f.fee)} {f.fee_asset}
                    </td>
                    <td className="px-2 py-0.5">{f.liquidity}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}

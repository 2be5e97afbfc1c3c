"use client";

import { useEffect, useState } from "react";
import { store } from "@/lib/store";
import { useSelect } from "@/lib/use";
import { pct, fmt } from "@/lib/format";
import { CANCEL_ALL_SHORTCUT, isCancelAll } from "@/lib/keys";
import MarketList from "./MarketList";
import PriceChart from "./PriceChart";
import OrderBook from "./OrderBook";
import DepthChart from "./DepthChart";
import TradeTape from "./TradeTape";
import OrderForm from "./OrderForm";
import AccountPanel from "./AccountPanel";
import SignIn from "./SignIn";
import StatusBadge from "./StatusBadge";

export default function Dashboard() {
  const [signingIn, setSigningIn] = useState(false);
  const symbol = useSelect((s) => s.symbol);
  const account = useSelect((s) => s.account);
  const ready = useSelect((s) => s.symbols.length > 0);

  useEffect(() => {
    const wanted = new URL(location.href).searchParams.get("symbol");
    void store.start(wanted);
    const onKey = (e: KeyboardEvent) => {
      if (isCancelAll(e) && store.account) {
        e.preventDefault();
        void store.cancelAll().catch(() => {});
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  return (
    <div className="flex min-h-screen flex-col">
      <header className="flex flex-wrap items-center gap-x-6 gap-y-1 border-b border-edge px-3 py-2">
        <span className="text-[15px] font-semibold tracking-wide">exchange</span>
        {symbol && <Summary />}
        <div className="ml-auto flex items-center gap-3">
          <StatusBadge />
          {account ? (
            <span className="flex items-center gap-2 text-dim">
              account <span className="num text-ink" data-testid="account-id">{account}</span>
              <button className="tab" onClick={() => store.signOut()}>
                Sign out
              </button>
            </span>
          ) : (
            <button
              className="rounded bg-[#2b3b5e] px-3 py-1 text-ink hover:bg-[#34487a]"
              onClick={() => setSigningIn(true)}
            >
              Sign in
            </button>
          )}
        </div>
      </header>
      {signingIn && !account && <SignIn onClose={() => setSigningIn(false)} />}
      {ready ? (
        <main className="grid flex-1 grid-cols-1 gap-2 p-2 md:grid-cols-2 xl:grid-cols-[230px_minmax(0,1fr)_280px_300px]">
          <div className="md:col-span-2 xl:col-span-1 xl:row-span-2">
            <MarketList />
          </div>
          <div className="md:col-span-2 xl:col-span-1">
            <PriceChart />
          </div>
          <div className="flex flex-col gap-2">
            <OrderBook />
            <DepthChart />
          </div>
          <div className="flex flex-col gap-2">
            <OrderForm />
            <TradeTape />
          </div>
          <div className="md:col-span-2 xl:col-span-3">
            <AccountPanel />
          </div>
        </main>
      ) : (
        <main className="flex flex-1 items-center justify-center text-dim">Connecting to the exchange…</main>
      )}
      <footer className="flex flex-wrap gap-4 border-t border-edge px-3 py-1 text-[11px] text-dim">
        <span>
          {CANCEL_ALL_SHORTCUT}: cancel all open orders · Enter in the order form: place the order
        </span>
        <span className="ml-auto">
          Charts by{" "}
          <a className="underline" href="https://www.tradingview.com/" target="_blank" rel="noreferrer">
            TradingView
          </a>{" "}
          Lightweight Charts™
        </span>
      </footer>
    </div>
  );
}

function Summary() {
  const symbol = useSelect((s) => s.symbol);
  const t = useSelect((s) => s.tickers[s.symbol]);
  const tick = useSelect((s) => s.rules()?.tick_size ?? "0.01");
  const lot = useSelect((s) => s.rules()?.lot_size ?? "0.01");
  const up = !t?.change_24h?.startsWith("-");
  return (
    <div className="flex flex-wrap items-baseline gap-x-5 gap-y-1">
      <span className="text-[15px] font-semibold" data-testid="summary-symbol">{symbol}</span>
      <span className={`num text-[15px] ${up ? "text-up" : "text-down"}`} data-testid="summary-last">
        {fmt(t?.last_price, tick)}
      </span>
      <Stat label="24h change" value={`${fmt(t?.change_24h, tick)} ${pct(t?.change_percent_24h)}`} />
      <Stat label="24h high" value={fmt(t?.high_24h, tick)} />
      <Stat label="24h low" value={fmt(t?.low_24h, tick)} />
      <Stat label="24h volume" value={fmt(t?.volume_24h, lot)} />
    </div>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <span className="flex flex-col leading-tight">
      <span className="text-[10px] text-dim">{label}</span>
      <span className="num">{value}</span>
    </span>
  );
}

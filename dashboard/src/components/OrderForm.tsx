"use client";

import { type FormEvent, useEffect, useState } from "react";
import { ApiError, type Order } from "@/lib/api";
import { fmt, group } from "@/lib/format";
import { store } from "@/lib/store";
import { useSelect } from "@/lib/use";
import {
  type FieldError,
  type OrderForm as Form,
  type OrderKind,
  type Side,
  type SymbolRules,
  type TimeInForce,
  quantityOf,
  totalOf,
  validate,
} from "@/lib/validate";

type Result =
  | { kind: "done"; order: Order }
  | { kind: "rejected"; message: string; field: string | null };

let sequence = 0;
const clientOrderId = () => `web-${Date.now().toString(36)}-${(sequence++).toString(36)}`;

/** What an execution report means for the trader, in one line, in the symbol's precision. */
export function describe(o: Order, r: SymbolRules): string {
  const q = (v: string) => `${fmt(v, r.lot_size)} ${r.base}`;
  const avg = o.average_price ? ` at an average of ${fmt(o.average_price, r.tick_size)} ${r.quote}` : "";
  switch (o.status) {
    case "FILLED":
      return `Filled ${q(o.filled_quantity)}${avg}`;
    case "NEW":
      return `Resting: ${q(o.remaining_quantity)} at ${fmt(o.price, r.tick_size)} ${r.quote}`;
    case "PARTIALLY_FILLED":
      return `Partially filled ${q(o.filled_quantity)}${avg}; ${q(o.remaining_quantity)} resting at ${fmt(o.price, r.tick_size)}`;
    case "CANCELLED": {
      const filled = /[1-9]/.test(o.filled_quantity) ? `, after filling ${q(o.filled_quantity)}${avg}` : "";
      return `Cancelled (${o.cancel_reason ?? "USER"})${filled}`;
    }
  }
}

/** Limit and market orders, checked against the symbol's rules before they are sent. */
export default function OrderForm() {
  const rules = useSelect((s) => s.rules());
  const account = useSelect((s) => s.account);
  const picked = useSelect((s) => s.picked);
  const balances = useSelect((s) => s.balances);
  const [form, setForm] = useState<Form>({
    side: "BUY",
    type: "LIMIT",
    price: "",
    quantity: "",
    total: "",
    timeInForce: "GTC",
    postOnly: false,
  });
  const [error, setError] = useState<FieldError | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setForm((f) => ({ ...f, price: "", quantity: "", total: "" }));
    setResult(null);
    setError(null);
  }, [rules?.symbol]);

  useEffect(() => {
    if (!picked || !rules) return;
    setForm((f) => ({ ...f, type: "LIMIT", price: picked.price, total: totalOf(rules, picked.price, f.quantity) }));
  }, [picked, rules]);

  if (!rules) return null;
  const spendAsset = form.side === "BUY" ? rules.quote : rules.base;
  const available = balances.find((b) => b.asset === spendAsset)?.available;

  const edit = (field: "price" | "quantity" | "total", value: string) => {
    setError(null);
    setForm((f) => {
      const next = { ...f, [field]: value };
      if (f.type === "LIMIT") {
        if (field === "total") next.quantity = quantityOf(rules, f.price, value);
        else next.total = totalOf(rules, next.price, next.quantity);
      }
      return next;
    });
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const checked = validate(rules, form, clientOrderId());
    if ("field" in checked && "message" in checked) {
      setError(checked);
      setResult(null);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      setResult({ kind: "done", order: await store.place(checked) });
    } catch (err) {
      const ae = err instanceof ApiError ? err : null;
      setResult({ kind: "rejected", message: (err as Error).message, field: ae?.field ?? null });
    } finally {
      setBusy(false);
    }
  };

  const set = <K extends keyof Form>(k: K, v: Form[K]) => {
    setError(null);
    setForm((f) => ({ ...f, [k]: v }));
  };
  const limit = form.type === "LIMIT";
  const input = (field: "price" | "quantity" | "total", label: string, unit: string) => (
    <label className="flex flex-col gap-0.5">
      <span className="text-[11px] text-dim">{label}</span>
      <span className="relative">
        <input
          className="field num pr-12"
          name={field}
          inputMode="decimal"
          autoComplete="off"
          value={form[field]}
          onChange={(e) => edit(field, e.target.value)}
          aria-invalid={error?.field === field}
          data-testid={`order-${field}`}
        />
        <span className="pointer-events-none absolute top-1.5 right-2 text-[11px] text-dim">{unit}</span>
      </span>
    </label>
  );

  return (
    <section className="panel" aria-label="Order entry">
      <div className="panel-title">Place order · {rules.symbol}</div>
      <form className="flex flex-col gap-2 p-2" onSubmit={submit} data-testid="order-form">
        <div className="grid grid-cols-2 gap-1" role="group" aria-label="Side">
          {(["BUY", "SELL"] as Side[]).map((s) => (
            <button
              key={s}
              type="button"
              aria-pressed={form.side === s}
              className={`rounded py-1 font-semibold ${
                form.side === s ? (s === "BUY" ? "bg-up text-black" : "bg-down text-black") : "bg-[#1d2230] text-dim"
              }`}
              onClick={() => set("side", s)}
              data-testid={`side-${s}`}
            >
              {s === "BUY" ? "Buy" : "Sell"}
            </button>
          ))}
        </div>
        <div className="flex gap-1" role="group" aria-label="Order type">
          {(["LIMIT", "MARKET"] as OrderKind[]).map((t) => (
            <button
              key={t}
              type="button"
              className="tab"
              aria-pressed={form.type === t}
              onClick={() => set("type", t)}
              data-testid={`type-${t}`}
            >
              {t === "LIMIT" ? "Limit" : "Market"}
            </button>
          ))}
        </div>
        {limit && input("price", "Price", rules.quote)}
        {(limit || form.side === "SELL") && input("quantity", "Quantity", rules.base)}
        {(limit || form.side === "BUY") && input("total", limit ? "Total" : "Spend", rules.quote)}
        {limit && (
          <div className="flex flex-wrap items-center gap-3 text-[12px]">
            <label className="flex items-center gap-1">
              <span className="text-dim">Time in force</span>
              <select
                className="field w-auto py-0.5"
                value={form.timeInForce}
                onChange={(e) => set("timeInForce", e.target.value as TimeInForce)}
                data-testid="order-tif"
              >
                <option value="GTC">GTC</option>
                <option value="IOC">IOC</option>
                <option value="FOK">FOK</option>
              </select>
            </label>
            <label className="flex items-center gap-1">
              <input
                type="checkbox"
                checked={form.postOnly}
                disabled={form.timeInForce !== "GTC"}
                onChange={(e) => set("postOnly", e.target.checked)}
                data-testid="order-post-only"
              />
              <span>Post-only</span>
            </label>
          </div>
        )}
        <div className="flex justify-between text-[12px] text-dim">
          <span>Available</span>
          <span className="num" data-testid="order-available">
            {account ? `${group(available ?? "0")} ${spendAsset}` : "–"}
          </span>
        </div>
        <button
          type="submit"
          disabled={!account || busy}
          className={`rounded py-1.5 font-semibold text-black disabled:opacity-50 ${
            form.side === "BUY" ? "bg-up" : "bg-down"
          }`}
          data-testid="order-submit"
        >
          {!account ? "Sign in to trade" : `${form.side === "BUY" ? "Buy" : "Sell"} ${rules.base}`}
        </button>
        <div className="min-h-[36px] text-[12px]" aria-live="polite" data-testid="order-result">
          {error && (
            <p className="text-down" data-testid="order-error">
              {error.message}
            </p>
          )}
          {!error && result?.kind === "rejected" && (
            <p className="text-down" data-testid="order-rejected">
              Rejected: {result.message}
            </p>
          )}
          {!error && result?.kind === "done" && (
            <p className={result.order.status === "CANCELLED" ? "text-amber-400" : "text-up"} data-testid="order-done">
              {describe(result.order, rules)}
            </p>
          )}
        </div>
      </form>
    </section>
  );
}

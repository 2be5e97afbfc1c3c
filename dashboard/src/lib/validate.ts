// The order form's rules, the same ones the exchange applies (`GET /symbols`): tick, lot,
// minimum and maximum quantity, maximum price and minimum notional. An order that passes here
// is one the exchange accepts as to its numbers; the exchange still has the last word.

import {
  type Dec,
  cmp,
  divFloor,
  floorTo,
  isMultiple,
  mul,
  parse,
  places,
  toPlain,
  dec,
  isZero,
} from "./decimal";

export type SymbolRules = {
  symbol: string;
  base: string;
  quote: string;
  tick_size: string;
  lot_size: string;
  min_quantity: string;
  max_quantity: string;
  max_price: string;
  min_notional: string;
  maker_fee_bps: number;
  taker_fee_bps: number;
};

export type Side = "BUY" | "SELL";
export type OrderKind = "LIMIT" | "MARKET";
export type TimeInForce = "GTC" | "IOC" | "FOK";

export type OrderForm = {
  side: Side;
  type: OrderKind;
  price: string;
  quantity: string;
  total: string;
  timeInForce: TimeInForce;
  postOnly: boolean;
};

export type FieldError = { field: "price" | "quantity" | "total"; message: string };

export type OrderRequest = {
  symbol: string;
  side: Side;
  type: OrderKind;
  price?: string;
  quantity?: string;
  quote_quantity?: string;
  time_in_force?: TimeInForce;
  post_only?: boolean;
  client_order_id: string;
};

function positive(text: string, field: FieldError["field"], name: string): Dec | FieldError {
  if (text.trim() === "") return { field, message: `${name} is required` };
  const d = parse(text);
  if (!d) return { field, message: `${name} must be a plain decimal number` };
  if (d.v <= 0n) return { field, message: `${name} must be more than 0` };
  return d;
}

const isError = (x: Dec | FieldError): x is FieldError => "field" in x;

/** The notional unit: the smallest quote amount the exchange can express (tick × lot). */
export const notionalUnit = (r: SymbolRules): Dec => mul(dec(r.tick_size), dec(r.lot_size));

/** Checks the form; returns the first problem, or the request to send. */
export function validate(
  r: SymbolRules,
  f: OrderForm,
  clientOrderId: string,
): FieldError | OrderRequest {
  const base = { symbol: r.symbol, side: f.side, type: f.type, client_order_id: clientOrderId };
  const checkQty = (q: Dec): FieldError | null => {
    if (!isMultiple(q, dec(r.lot_size)))
      return { field: "quantity", message: `quantity must be a multiple of ${r.lot_size}` };
    if (cmp(q, dec(r.min_quantity)) < 0)
      return { field: "quantity", message: `quantity must be at least ${r.min_quantity}` };
    if (cmp(q, dec(r.max_quantity)) > 0)
      return { field: "quantity", message: `quantity must be at most ${r.max_quantity}` };
    return null;
  };
  if (f.type === "LIMIT") {
    const price = positive(f.price, "price", "price");
    if (isError(price)) return price;
    if (!isMultiple(price, dec(r.tick_size)))
      return { field: "price", message: `price must be a multiple of ${r.tick_size}` };
    if (cmp(price, dec(r.max_price)) > 0)
      return { field: "price", message: `price must be at most ${r.max_price}` };
    const qty = positive(f.quantity, "quantity", "quantity");
    if (isError(qty)) return qty;
    const bad = checkQty(qty);
    if (bad) return bad;
    if (cmp(mul(price, qty), dec(r.min_notional)) < 0)
      return {
        field: "total",
        message: `total must be at least ${r.min_notional} ${r.quote}`,
      };
    if (f.postOnly && f.timeInForce !== "GTC")
      return { field: "price", message: "post-only is only for GTC orders" };
    return {
      ...base,
      price: toPlain(price),
      quantity: toPlain(qty),
      time_in_force: f.timeInForce,
      ...(f.postOnly ? { post_only: true } : {}),
    };
  }
  if (f.side === "BUY") {
    // A market buy spends a quote amount, so that what it can spend is known before it trades.
    const total = positive(f.total, "total", "total");
    if (isError(total)) return total;
    if (!isMultiple(total, notionalUnit(r)))
      return {
        field: "total",
        message: `total must be a multiple of ${toPlain(notionalUnit(r))} ${r.quote}`,
      };
    if (cmp(total, dec(r.min_notional)) < 0)
      return { field: "total", message: `total must be at least ${r.min_notional} ${r.quote}` };
    return { ...base, quote_quantity: toPlain(total) };
  }
  const qty = positive(f.quantity, "quantity", "quantity");
  if (isError(qty)) return qty;
  const bad = checkQty(qty);
  if (bad) return bad;
  return { ...base, quantity: toPlain(qty) };
}

/** The total for a price and quantity, to the quote's places; "" when either is not a number. */
export function totalOf(r: SymbolRules, price: string, quantity: string): string {
  const p = parse(price);
  const q = parse(quantity);
  if (!p || !q) return "";
  const t = mul(p, q);
  const n = places(r.tick_size) + places(r.lot_size);
  return toPlain(floorTo(t, { v: 1n, s: n }));
}

/** The quantity a total buys at a price, down to the lot; "" when it cannot be worked out. */
export function quantityOf(r: SymbolRules, price: string, total: string): string {
  const p = parse(price);
  const t = parse(total);
  if (!p || !t || isZero(p)) return "";
  const q = divFloor(t, p, places(r.lot_size));
  return q ? toPlain(floorTo(q, dec(r.lot_size))) : "";
}

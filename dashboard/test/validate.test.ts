import { describe, expect, it } from "vitest";
import { type OrderForm, type SymbolRules, quantityOf, totalOf, validate } from "@/lib/validate";
import { clock, fmt, group, pct } from "@/lib/format";
import { dec, divFloor, toFixed, toPlain } from "@/lib/decimal";

const BTC: SymbolRules = {
  symbol: "BTC-USD",
  base: "BTC",
  quote: "USD",
  tick_size: "0.01",
  lot_size: "0.00001",
  min_quantity: "0.00001",
  max_quantity: "1000",
  max_price: "10000000",
  min_notional: "1",
  maker_fee_bps: 5,
  taker_fee_bps: 10,
};

const form = (f: Partial<OrderForm>): OrderForm => ({
  side: "BUY",
  type: "LIMIT",
  price: "65000.00",
  quantity: "0.5",
  total: "",
  timeInForce: "GTC",
  postOnly: false,
  ...f,
});

const fieldOf = (r: ReturnType<typeof validate>) => ("field" in r && "message" in r ? r.field : null);

describe("the order form's checks", () => {
  it("accepts a good limit order and sends plain decimals", () => {
    expect(validate(BTC, form({ postOnly: true }), "c1")).toEqual({
      symbol: "BTC-USD",
      side: "BUY",
      type: "LIMIT",
      price: "65000",
      quantity: "0.5",
      time_in_force: "GTC",
      post_only: true,
      client_order_id: "c1",
    });
  });

  it("refuses a price off the tick, naming the tick", () => {
    const r = validate(BTC, form({ price: "65000.001" }), "c");
    expect(r).toEqual({ field: "price", message: "price must be a multiple of 0.01" });
  });

  it("refuses a quantity off the lot, below the minimum or above the maximum", () => {
    expect(fieldOf(validate(BTC, form({ quantity: "0.000001" }), "c"))).toBe("quantity");
    expect(fieldOf(validate(BTC, form({ quantity: "1000.00001" }), "c"))).toBe("quantity");
    expect(fieldOf(validate(BTC, form({ quantity: "0" }), "c"))).toBe("quantity");
  });

  it("refuses a limit order below the minimum notional", () => {
    const r = validate(BTC, form({ price: "1.00", quantity: "0.5" }), "c");
    expect(r).toEqual({ field: "total", message: "total must be at least 1 USD" });
  });

  it("refuses what is not a plain number (exponents, words, empty)", () => {
    expect(fieldOf(validate(BTC, form({ price: "6.5e4" }), "c"))).toBe("price");
    expect(fieldOf(validate(BTC, form({ price: "abc" }), "c"))).toBe("price");
    expect(fieldOf(validate(BTC, form({ price: "" }), "c"))).toBe("price");
    expect(fieldOf(validate(BTC, form({ price: "100000000" }), "c"))).toBe("price");
  });

  it("post-only needs GTC", () => {
    expect(fieldOf(validate(BTC, form({ postOnly: true, timeInForce: "IOC" }), "c"))).toBe("price");
  });

  it("sizes a market buy by what it spends, in whole notional units", () => {
    expect(validate(BTC, form({ type: "MARKET", total: "100.5" }), "m")).toEqual({
      symbol: "BTC-USD",
      side: "BUY",
      type: "MARKET",
      quote_quantity: "100.5",
      client_order_id: "m",
    });
    expect(fieldOf(validate(BTC, form({ type: "MARKET", total: "0.5" }), "m"))).toBe("total");
    expect(fieldOf(validate(BTC, form({ type: "MARKET", total: "1.00000001" }), "m"))).toBe("total");
  });

  it("sizes a market sell by its quantity", () => {
    expect(validate(BTC, form({ type: "MARKET", side: "SELL", quantity: "0.25" }), "s")).toMatchObject({
      type: "MARKET",
      side: "SELL",
      quantity: "0.25",
    });
  });
});

describe("price, quantity and total stay consistent", () => {
  it("total is price × quantity, exactly", () => {
    expect(totalOf(BTC, "65000.01", "0.00003")).toBe("1.9500003");
    expect(totalOf(BTC, "x", "1")).toBe("");
  });

  it("quantity from a total rounds down to the lot", () => {
    expect(quantityOf(BTC, "65000", "100")).toBe("0.00153");
    expect(quantityOf(BTC, "0", "100")).toBe("");
  });
});

describe("number formatting", () => {
  it("shows each symbol's own precision, grouped, without floats", () => {
    expect(fmt("65000.1", "0.01")).toBe("65,000.10");
    expect(fmt("0.123456789", "0.00001")).toBe("0.12345");
    expect(fmt("1234567", "1")).toBe("1,234,567");
    expect(fmt(null, "0.01")).toBe("–");
    expect(group("-1234.5")).toBe("-1,234.5");
    expect(pct("1.25")).toBe("+1.25%");
    expect(pct("-0.50")).toBe("-0.50%");
    expect(clock(new Date(2026, 0, 2, 3, 4, 5).getTime())).toBe("03:04:05");
  });

  it("divides and truncates exactly", () => {
    expect(toPlain(divFloor(dec("1"), dec("3"), 5)!)).toBe("0.33333");
    expect(toPlain(divFloor(dec("-1"), dec("3"), 2)!)).toBe("-0.34");
    expect(toFixed(dec("9007199254740993.5"), 1)).toBe("9007199254740993.5");
  });
});

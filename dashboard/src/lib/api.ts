// The REST API, as any client calls it: public GETs, and signed requests for the account.

import { signedQuery } from "./sign";

export type Credentials = { key: string; secret: string };

/** An error answer of the exchange: its status and JSON body (code, error, message, field). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | null,
    readonly error: string,
    message: string,
    readonly field: string | null,
  ) {
    super(message);
  }
}

async function answer<T>(resp: Response): Promise<T> {
  const text = await resp.text();
  const body = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    throw new ApiError(
      resp.status,
      body?.code ?? null,
      body?.error ?? `HTTP_${resp.status}`,
      body?.message ?? (text || resp.statusText),
      body?.field ?? null,
    );
  }
  return body as T;
}

export async function get<T>(path: string): Promise<T> {
  return answer<T>(await fetch(path, { cache: "no-store" }));
}

/** A signed request for the key's account; `path` may carry a query string. */
export async function signed<T>(
  creds: Credentials,
  method: "GET" | "POST" | "DELETE" | "PATCH",
  path: string,
  body?: unknown,
): Promise<T> {
  const [route, query = ""] = path.split("?");
  const text = body === undefined ? "" : JSON.stringify(body);
  const q = await signedQuery(creds.secret, method, route, query, text);
  const headers: Record<string, string> = { "X-API-KEY": creds.key };
  if (text) headers["content-type"] = "application/json";
  return answer<T>(
    await fetch(`${route}?${q}`, { method, headers, body: text || undefined, cache: "no-store" }),
  );
}

export type Ticker = {
  symbol: string;
  sequence: number;
  last_price: string | null;
  best_bid: string | null;
  best_ask: string | null;
  open_24h: string | null;
  high_24h: string | null;
  low_24h: string | null;
  volume_24h: string;
  quote_volume_24h: string;
  change_24h: string | null;
  change_percent_24h: string | null;
  trades_24h: number;
};

export type Trade = {
  trade_id: string;
  price: string;
  quantity: string;
  taker_side: "BUY" | "SELL";
  time: number;
};

export type Candle = {
  open_time: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
};

export type Fill = { trade_id: string; price: string; quantity: string; liquidity: string };

export type Order = {
  order_id: string;
  client_order_id: string | null;
  symbol: string;
  side: "BUY" | "SELL";
  type: "LIMIT" | "MARKET";
  time_in_force: string | null;
  post_only: boolean;
  price: string | null;
  quantity: string | null;
  quote_quantity: string | null;
  status: "NEW" | "PARTIALLY_FILLED" | "FILLED" | "CANCELLED";
  cancel_reason: string | null;
  filled_quantity: string;
  remaining_quantity: string;
  cumulative_quote_quantity: string;
  average_price: string | null;
  fills: Fill[];
  created_at: number;
  updated_at: number;
};

export type Balance = { asset: string; available: string; reserved: string; total: string };

export type AccountTrade = {
  trade_id: string;
  order_id: string;
  symbol: string;
  side: "BUY" | "SELL";
  price: string;
  quantity: string;
  quote_quantity: string;
  fee: string;
  fee_asset: string;
  liquidity: string;
  time: number;
};

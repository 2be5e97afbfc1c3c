// The screen's state and its one WebSocket: market data for the chosen symbol, tickers for
// all, the account's orders when signed in. Components read it through `useSelect`; updates
// are coalesced into at most one render per 100 ms, on an animation frame, however many
// messages arrive.

import {
  type AccountTrade,
  type Balance,
  type Credentials,
  type Order,
  type Ticker,
  type Trade,
  get,
  signed,
} from "./api";
import { type Book, applyDiff, emptyBook, fromSnapshot } from "./book";
import { hmacHex, payload, timestamp } from "./sign";
import type { SymbolRules } from "./validate";

export type Status = "connecting" | "live" | "reconnecting" | "stale";

/** A connection that has had no message (not even a pong) for this long is stale. */
const STALE_MS = 12_000;
const PING_MS = 4_000;
/** A stale connection is dropped and made anew after this long. */
const DEAD_MS = 20_000;
const MAX_TRADES = 80;
/** The screen renders at most once per this many milliseconds. */
const RENDER_MS = 100;
const MAX_HISTORY = 100;
const CREDS_KEY = "exchange.credentials";

type Listener = (msg: Record<string, unknown>) => void;

export class Store {
  symbols: SymbolRules[] = [];
  tickers: Record<string, Ticker> = {};
  symbol = "";
  book: Book = emptyBook();
  trades: Trade[] = [];
  status: Status = "connecting";
  /** Bumped on every (re)connection: what was loaded over REST must be loaded again. */
  epoch = 0;
  creds: Credentials | null = null;
  account: string | null = null;
  /** Whether this connection has authenticated (the `orders` channel needs it). */
  authed = false;
  accountError: string | null = null;
  balances: Balance[] = [];
  openOrders: Order[] = [];
  history: Order[] = [];
  fills: AccountTrade[] = [];
  demo: Credentials | null = null;
  /** How many gaps re-synced the book (shown for the curious, checked by the tests). */
  resyncs = 0;
  version = 0;

  private ws: WebSocket | null = null;
  wanted = new Set<string>();
  subscribed = new Set<string>();
  /** Subscribe requests awaiting their answer, by id: a refused one is sent again without
   *  the channel at fault. */
  private pendingSubscribes = new Map<number, string[]>();
  /** Channels the server refused on this connection (not asked for again until it changes). */
  private refused = new Set<string>();
  private nextId = 1;
  private listeners = new Map<string, Set<Listener>>();
  private subscribers = new Set<() => void>();
  private scheduled = false;
  private lastFlush = 0;
  private lastMessage = 0;
  private retry = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private hiddenAt = 0;
  private fillsTimer: ReturnType<typeof setTimeout> | null = null;
  private started = false;

  // --- React binding -------------------------------------------------------------------

  subscribe = (fn: () => void) => {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  };
  getVersion = () => this.version;

  private changed() {
    if (this.scheduled) return;
    this.scheduled = true;
    const flush = () => {
      this.scheduled = false;
      this.lastFlush = performance.now();
      this.version += 1;
      for (const fn of this.subscribers) fn();
    };
    if (typeof document === "undefined" || document.hidden) {
      // A hidden tab gets no animation frames; a timer keeps its state current.
      setTimeout(flush, 250);
      return;
    }
    // At most one render per RENDER_MS, on an animation frame: a busy market costs the page
    // ten renders a second, not one per message.
    const wait = this.lastFlush + RENDER_MS - performance.now();
    if (wait > 0) setTimeout(() => requestAnimationFrame(flush), wait);
    else requestAnimationFrame(flush);
  }

  // --- lifecycle -----------------------------------------------------------------------

  async start(symbol: string | null) {
    if (this.started) return;
    this.started = true;
    // For the browser test and the curious: the live state, read-only by convention.
    (window as unknown as { __exchange: Store }).__exchange = this;
    const saved = sessionStorage.getItem(CREDS_KEY);
    if (saved) this.creds = JSON.parse(saved);
    await this.loadSymbols();
    this.select(symbol && this.symbols.some((s) => s.symbol === symbol) ? symbol : this.symbols[0]?.symbol ?? "");
    this.connect();
    this.timer = setInterval(() => this.heartbeat(), 1000);
    document.addEventListener("visibilitychange", this.onVisibility);
    get<Credentials>("/demo/credentials").then(
      (c) => {
        this.demo = c;
        this.changed();
      },
      () => {},
    );
  }

  private async loadSymbols() {
    for (let attempt = 0; ; attempt++) {
      try {
        this.symbols = await get<SymbolRules[]>("/symbols");
        return;
      } catch {
        this.status = "reconnecting";
        this.changed();
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
      }
    }
  }

  private onVisibility = () => {
    if (document.hidden) {
      this.hiddenAt = Date.now();
      return;
    }
    // Back from the background: timers were throttled and messages may have been dropped, so
    // start from fresh snapshots rather than trust what was kept.
    if (this.hiddenAt && Date.now() - this.hiddenAt > 5000) this.reconnect();
    this.hiddenAt = 0;
  };

  private heartbeat() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const quiet = Date.now() - this.lastMessage;
    if (quiet > DEAD_MS) return this.reconnect();
    if (quiet > STALE_MS && this.status === "live") {
      this.status = "stale";
      this.changed();
    }
    if (quiet > PING_MS) ws.send(JSON.stringify({ op: "ping" }));
  }

  private url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/ws`;
  }

  private connect() {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.subscribed.clear();
    this.pendingSubscribes.clear();
    this.refused.clear();
    this.authed = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.retry = 0;
      this.lastMessage = Date.now();
      this.status = "live";
      this.epoch += 1;
      this.book = emptyBook();
      this.want();
      if (this.creds) {
        void this.loadAccount().catch(() => {});
        void this.authenticate();
      }
      void this.loadMarket();
      this.changed();
    };
    ws.onmessage = (e) => {
      if (this.ws !== ws) return;
      this.lastMessage = Date.now();
      if (this.status !== "live") {
        this.status = "live";
        this.changed();
      }
      this.handle(JSON.parse(e.data as string));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.status = "reconnecting";
      this.changed();
      const delay = Math.min(5000, 250 * 2 ** this.retry++);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    };
  }

  private reconnect() {
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.status = "reconnecting";
    this.changed();
    this.connect();
  }

  // --- subscriptions -------------------------------------------------------------------

  private send(msg: unknown) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** Brings the server's subscriptions in line with what the screen wants. */
  private sync() {
    const add = [...this.wanted].filter((c) => !this.subscribed.has(c) && !this.refused.has(c));
    const drop = [...this.subscribed].filter((c) => !this.wanted.has(c));
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    if (drop.length) this.send({ op: "unsubscribe", channels: drop });
    if (add.length) {
      const id = this.nextId++;
      this.pendingSubscribes.set(id, add);
      this.send({ op: "subscribe", id, channels: add });
    }
    for (const c of drop) this.subscribed.delete(c);
    for (const c of add) this.subscribed.add(c);
  }

  private want() {
    const w = new Set(this.symbols.map((s) => `ticker.${s.symbol}`));
    if (this.symbol) {
      w.add(`book.${this.symbol}`);
      w.add(`trades.${this.symbol}`);
    }
    for (const channel of this.listeners.keys()) w.add(channel);
    if (this.authed && this.creds) w.add("orders");
    this.wanted = w;
    this.sync();
  }

  /** Listens to a channel (the chart's candles); returns the unsubscriber. */
  listen(channel: string, fn: Listener): () => void {
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(fn);
    this.want();
    return () => {
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(channel);
      // Deferred: a component that listens again at once (new props) keeps its subscription.
      queueMicrotask(() => this.want());
    };
  }

  select(symbol: string) {
    if (symbol === this.symbol) return;
    this.symbol = symbol;
    this.book = emptyBook();
    this.trades = [];
    const url = new URL(location.href);
    url.searchParams.set("symbol", symbol);
    history.replaceState(null, "", url);
    document.title = `${symbol} · exchange`;
    this.want();
    void this.loadMarket();
    this.changed();
  }

  rules(): SymbolRules | undefined {
    return this.symbols.find((s) => s.symbol === this.symbol);
  }

  private async loadMarket() {
    const symbol = this.symbol;
    try {
      const [tickers, trades] = await Promise.all([
        get<Ticker[]>("/market-data"),
        symbol ? get<Trade[]>(`/market-data/${symbol}/trades?limit=${MAX_TRADES}`) : [],
      ]);
      for (const t of tickers) this.tickers[t.symbol] = t;
      if (symbol === this.symbol) {
        // Trades that arrived over the socket while this loaded are newer: keep them first.
        const seen = new Set(this.trades.map((t) => t.trade_id));
        this.trades = [...this.trades, ...trades.filter((t) => !seen.has(t.trade_id))].slice(
          0,
          MAX_TRADES,
        );
      }
      this.changed();
    } catch {
      // The socket's close handler reports the outage and the next open loads again.
    }
  }

  // --- messages ------------------------------------------------------------------------

  private handle(msg: Record<string, unknown>) {
    const channel = msg.channel as string | undefined;
    switch (msg.type) {
      case "snapshot":
        if (channel === `book.${this.symbol}`) {
          this.book = fromSnapshot(msg as never);
          this.changed();
        }
        return;
      case "diff":
        if (channel === `book.${this.symbol}`) {
          if (applyDiff(this.book, msg as never) === "gap") this.resync(channel);
          this.changed();
        }
        return;
      case "trades":
        if (channel === `trades.${this.symbol}`) {
          const fresh = (msg.trades as Trade[]).slice().reverse();
          this.trades = [...fresh, ...this.trades].slice(0, MAX_TRADES);
          this.changed();
        }
        return;
      case "ticker": {
        const t = msg as unknown as Ticker;
        this.tickers[t.symbol] = t;
        this.changed();
        return;
      }
      case "subscribed":
        this.pendingSubscribes.delete(msg.id as number);
        return;
      case "authenticated":
        this.authed = true;
        this.refused.delete("orders");
        this.want();
        return;
      case "execution_report":
        this.onOrder(msg.order as Order);
        return;
      case "balance":
        this.onBalance(msg as unknown as Balance);
        return;
      case "error": {
        // A refused subscribe subscribes to none of its channels: ask again without the one
        // at fault.
        const asked = this.pendingSubscribes.get(msg.id as number);
        if (asked) {
          this.pendingSubscribes.delete(msg.id as number);
          for (const c of asked) this.subscribed.delete(c);
          this.refused.add(channel ?? asked[0]);
          this.sync();
        }
        return;
      }
    }
    if (channel) for (const fn of this.listeners.get(channel) ?? []) fn(msg);
  }

  /** A gap in the book's sequence: subscribe again for a fresh snapshot. */
  private resync(channel: string) {
    this.resyncs += 1;
    this.book = emptyBook();
    this.send({ op: "unsubscribe", channels: [channel] });
    this.send({ op: "subscribe", channels: [channel] });
  }

  // --- the account ---------------------------------------------------------------------

  async signIn(creds: Credentials): Promise<void> {
    this.creds = creds;
    try {
      await this.loadAccount();
    } catch (e) {
      this.creds = null;
      this.account = null;
      this.changed();
      throw e;
    }
    sessionStorage.setItem(CREDS_KEY, JSON.stringify(creds));
    void this.authenticate();
  }

  signOut() {
    sessionStorage.removeItem(CREDS_KEY);
    this.creds = null;
    this.account = null;
    this.authed = false;
    this.balances = [];
    this.openOrders = [];
    this.history = [];
    this.fills = [];
    this.want();
    this.reconnect();
  }

  /** Authenticates the socket, for the `orders` channel (the account itself loads over REST). */
  private async authenticate() {
    const creds = this.creds;
    if (!creds) return;
    const ts = timestamp();
    const signature = await hmacHex(creds.secret, payload("GET", "/ws", `timestamp=${ts}`, ""));
    this.send({ op: "auth", key: creds.key, timestamp: ts, signature });
  }

  async loadAccount() {
    const creds = this.creds;
    if (!creds) return;
    try {
      const [account, open, closed, fills] = await Promise.all([
        signed<{ account: string; balances: Balance[] }>(creds, "GET", "/account"),
        signed<Order[]>(creds, "GET", "/orders?status=OPEN&limit=200"),
        signed<Order[]>(creds, "GET", `/orders?status=CLOSED&limit=${MAX_HISTORY}`),
        signed<AccountTrade[]>(creds, "GET", `/account/trades?limit=${MAX_HISTORY}`),
      ]);
      this.account = account.account;
      this.accountError = null;
      this.balances = account.balances;
      this.openOrders = open;
      this.history = closed;
      this.fills = fills;
    } catch (e) {
      this.accountError = (e as Error).message;
      throw e;
    } finally {
      this.changed();
    }
  }

  /** An execution report: the order moves between open and history. */
  onOrder(o: Order) {
    const open = o.status === "NEW" || o.status === "PARTIALLY_FILLED";
    this.openOrders = this.openOrders.filter((x) => x.order_id !== o.order_id);
    this.history = this.history.filter((x) => x.order_id !== o.order_id);
    if (open) this.openOrders = [o, ...this.openOrders];
    else this.history = [o, ...this.history].slice(0, MAX_HISTORY);
    if (o.fills.length) this.refreshFills();
    this.changed();
  }

  private onBalance(b: Balance) {
    const i = this.balances.findIndex((x) => x.asset === b.asset);
    const next = { asset: b.asset, available: b.available, reserved: b.reserved, total: b.total };
    if (i < 0) this.balances = [...this.balances, next];
    else this.balances = this.balances.map((x, j) => (j === i ? next : x));
    this.changed();
  }

  /** Fees are in the account's trades, not the execution report: fetch them, at most 4 a second. */
  private refreshFills() {
    if (this.fillsTimer || !this.creds) return;
    this.fillsTimer = setTimeout(async () => {
      this.fillsTimer = null;
      const creds = this.creds;
      if (!creds) return;
      try {
        this.fills = await signed<AccountTrade[]>(creds, "GET", `/account/trades?limit=${MAX_HISTORY}`);
        this.changed();
      } catch {
        // The next fill or reconnection tries again.
      }
    }, 250);
  }

  /** A price chosen in the book, for the order form. */
  picked: { price: string; n: number } | null = null;

  pick(price: string) {
    this.picked = { price, n: (this.picked?.n ?? 0) + 1 };
    this.changed();
  }

  balance(asset: string): Balance | undefined {
    return this.balances.find((b) => b.asset === asset);
  }

  async place(order: unknown): Promise<Order> {
    const o = await signed<Order>(this.need(), "POST", "/orders", order);
    this.onOrder(o);
    return o;
  }

  async cancel(orderId: string): Promise<Order> {
    const o = await signed<Order>(this.need(), "DELETE", `/orders/${orderId}`);
    this.onOrder(o);
    return o;
  }

  async cancelAll(symbol?: string): Promise<Order[]> {
    const q = symbol ? `?symbol=${encodeURIComponent(symbol)}` : "";
    const r = await signed<{ cancelled: Order[] }>(this.need(), "DELETE", `/orders${q}`);
    for (const o of r.cancelled) this.onOrder(o);
    return r.cancelled;
  }

  private need(): Credentials {
    if (!this.creds) throw new Error("sign in first");
    return this.creds;
  }
}

export const store = new Store();

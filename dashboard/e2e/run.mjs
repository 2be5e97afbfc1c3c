// The dashboard in a real browser (Debian's chromium, driven by playwright-core; nothing
// downloads a browser) against the real exchange, started here on a free port. Each step
// saves a screenshot under SCREENSHOTS (default target/dashboard-e2e) and the run ends with
// the measured figures: first load, JavaScript shipped, long tasks under load.
//
//   EXCHANGE_BIN=target/release/exchange npm run e2e

import { chromium } from "playwright-core";
import { gzipSync } from "node:zlib";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Exchange, freePort } from "./exchange.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
const SHOTS = process.env.SCREENSHOTS ?? join(ROOT, "target", "dashboard-e2e");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const LOAD_RATE = Number(process.env.LOAD_RATE ?? 1000);
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 8);
const SYMBOL = "BTC-USD";
const STEP_TIMEOUT = 20_000;

mkdirSync(SHOTS, { recursive: true });
const figures = {};
let stepNo = 0;
let page;

async function step(name, fn) {
  stepNo += 1;
  const started = Date.now();
  process.stdout.write(`step ${stepNo}: ${name} ... `);
  try {
    await fn();
  } catch (e) {
    const state = await page
      ?.evaluate(() => {
        const s = window.__exchange;
        return s && { status: s.status, symbol: s.symbol, seq: s.book.seq, bids: s.book.bids.size, asks: s.book.asks.size, wanted: [...s.wanted], subscribed: [...s.subscribed], authed: s.authed };
      })
      .catch(() => null);
    console.log(`\npage state: ${JSON.stringify(state)}`);
    throw e;
  } finally {
    const file = join(SHOTS, `${String(stepNo).padStart(2, "0")}-${name.replace(/[^a-z0-9]+/gi, "-")}.png`);
    if (page) await page.screenshot({ path: file }).catch(() => {});
  }
  console.log(`ok (${Date.now() - started} ms)`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const until = (fn, what, timeout = STEP_TIMEOUT) =>
  page.waitForFunction(fn, undefined, { timeout }).catch((e) => {
    throw new Error(`waiting for ${what}: ${e.message.split("\n")[0]}`);
  });

/** The book as the page holds it (levels, best first) and its sequence number. */
const pageBook = () =>
  page.evaluate(() => {
    const s = window.__exchange;
    const sort = (m, desc) =>
      [...m].sort((a, b) => {
        const d = Number(a[0]) - Number(b[0]);
        return desc ? -d : d;
      });
    return { seq: s.book.seq, bids: sort(s.book.bids, true), asks: sort(s.book.asks, false), resyncs: s.resyncs };
  });

function jsShipped(dir) {
  let raw = 0;
  let gz = 0;
  const walk = (d) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(".js")) {
        const b = readFileSync(p);
        raw += b.length;
        gz += gzipSync(b, { level: 9 }).length;
      }
    }
  };
  walk(dir);
  return { raw, gz };
}

const exchange = new Exchange(await freePort());
let browser;
let failed = false;
try {
  await exchange.start();
  const maker = exchange.client(await exchange.account({ USD: "10000000", BTC: "1000", ETH: "10000", SOL: "100000" }));
  const trader = await exchange.account({ USD: "100000", BTC: "2" });
  // A book and a trade to look at.
  await maker.call("POST", "/orders", { symbol: SYMBOL, side: "SELL", type: "LIMIT", price: "65100.00", quantity: "0.50000" });
  await maker.call("POST", "/orders", { symbol: SYMBOL, side: "SELL", type: "LIMIT", price: "65200.00", quantity: "1.00000" });
  await maker.call("POST", "/orders", { symbol: SYMBOL, side: "BUY", type: "LIMIT", price: "64900.00", quantity: "0.50000" });
  await maker.call("POST", "/orders", { symbol: SYMBOL, side: "BUY", type: "LIMIT", price: "65000.00", quantity: "0.01000" });
  await maker.call("POST", "/orders", { symbol: SYMBOL, side: "SELL", type: "MARKET", quantity: "0.01000" });

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
  let sockets = 0;
  page.on("websocket", () => (sockets += 1));
  page.on("console", (m) => m.type() === "error" && !m.text().includes("404") && console.log(`console: ${m.text()}`));
  if (process.env.DEBUG_WS) {
    page.on("websocket", (ws) => {
      console.log(`\nws open ${ws.url()}`);
      ws.on("framesent", (f) => console.log(` > ${String(f.payload).slice(0, 160)}`));
      ws.on("framereceived", (f) => !String(f.payload).includes('"ticker"') && console.log(` < ${String(f.payload).slice(0, 160)}`));
      ws.on("close", () => console.log("ws closed"));
    });
  }
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push(e.duration);
    }).observe({ type: "longtask", buffered: true });
  });

  await step("page loads", async () => {
    // Warm the exchange's page cache the way a second visit would find it.
    await fetch(`${exchange.url}/`);
    await page.goto(`${exchange.url}/?symbol=${SYMBOL}`, { waitUntil: "load" });
    figures.first_load_ms = await page.evaluate(() => {
      const n = performance.getEntriesByType("navigation")[0];
      return Math.round(n.loadEventEnd - n.startTime);
    });
    await until(() => document.querySelector('[data-testid="status"]')?.dataset.status === "live", "the live status");
  });

  await step("market list, book, chart and tape fill", async () => {
    await until(() => document.querySelectorAll('[data-testid^="market-last-"]').length === 4, "four markets");
    await until(() => document.querySelector('[data-testid="market-last-BTC-USD"]')?.textContent === "65,000.00", "the last price in the market list");
    await until(() => document.querySelectorAll('[data-testid="book-ask"]').length === 2 && document.querySelectorAll('[data-testid="book-bid"]').length === 1, "the book's levels");
    await until(() => document.querySelectorAll('[data-testid="tape-trade"]').length >= 1, "the trade tape");
    await until(() => /^[1-9]\d* candles?$/.test(document.querySelector('[data-testid="chart-bars"]')?.textContent ?? ""), "candles in the chart");
    check(new URL(page.url()).searchParams.get("symbol") === SYMBOL, "the URL names the market");
  });

  await step("another market from the list and back", async () => {
    await page.click('[data-testid="market-ETH-USD"]');
    await until(() => new URL(location.href).searchParams.get("symbol") === "ETH-USD" && document.querySelector('[data-testid="summary-symbol"]')?.textContent === "ETH-USD", "the ETH-USD screen");
    await page.click('[data-testid="market-BTC-USD"]');
    await until(() => document.querySelectorAll('[data-testid="book-ask"]').length === 2, "the BTC-USD book again");
  });

  await step("sign in shows balances", async () => {
    await page.click("text=Sign in");
    await page.fill('[data-testid="sign-in-key"]', trader.key);
    await page.fill('[data-testid="sign-in-secret"]', trader.secret);
    await page.keyboard.press("Enter");
    await until(() => /^100,000(\.0+)?$/.test(document.querySelector('[data-testid="available-USD"]')?.textContent ?? ""), "the USD balance");
    const stored = await page.evaluate(() => sessionStorage.getItem("exchange.credentials"));
    check(stored?.includes(trader.key), "the key is in session storage");
  });

  let restingId;
  await step("a limit order rests in the book and in open orders", async () => {
    await page.click('[data-testid="side-BUY"]');
    await page.click('[data-testid="type-LIMIT"]');
    await page.fill('[data-testid="order-price"]', "64950.00");
    await page.fill('[data-testid="order-quantity"]', "0.10000");
    check((await page.inputValue('[data-testid="order-total"]')) === "6495", "the total follows price and quantity");
    await page.press('[data-testid="order-quantity"]', "Enter");
    await until(() => document.querySelector('[data-testid="order-done"]')?.textContent.startsWith("Resting"), "the resting result");
    await until(() => [...document.querySelectorAll('[data-testid="book-bid"]')].some((e) => e.dataset.price === "64950"), "the order's level in the book");
    await page.click("text=Open orders");
    await until(() => document.querySelectorAll('[data-testid="open-order"]').length === 1, "one open order");
    restingId = await page.getAttribute('[data-testid="open-order"]', "data-order-id");
  });

  await step("cancelling it removes it", async () => {
    await page.click('[data-testid="cancel-order"]');
    await until(() => document.querySelectorAll('[data-testid="open-order"]').length === 0, "no open orders");
    await until(() => ![...document.querySelectorAll('[data-testid="book-bid"]')].some((e) => e.dataset.price === "64950"), "the level gone from the book");
    const o = await exchange.client(trader).call("GET", `/orders/${restingId}`);
    check(o.status === "CANCELLED", `the order is cancelled on the exchange (${o.status})`);
  });

  await step("a crossing order fills and shows in the tape and the fills", async () => {
    const tapeBefore = await page.locator('[data-testid="tape-trade"]').count();
    // Clicking the best ask puts its price in the form.
    await page.click('[data-testid="book-ask"][data-price="65100"]');
    await until(() => document.querySelector('[data-testid="order-price"]').value === "65100", "the clicked level's price in the form");
    await page.fill('[data-testid="order-quantity"]', "0.20000");
    await page.click('[data-testid="order-submit"]');
    await until(() => document.querySelector('[data-testid="order-done"]')?.textContent === "Filled 0.20000 BTC at an average of 65,100.00 USD", "the filled result");
    await until(() => document.querySelectorAll('[data-testid="tape-trade"]').length > 0 && document.querySelector('[data-testid="tape-trade"]').textContent.startsWith("65,100.00"), "the trade at the top of the tape");
    check((await page.locator('[data-testid="tape-trade"]').count()) > tapeBefore || tapeBefore >= 80, "one more trade in the tape");
    await page.click("text=Fills");
    await until(() => [...document.querySelectorAll('[data-testid="fill"]')].some((e) => e.textContent.includes("65,100.00") && e.textContent.includes("BTC") && e.textContent.includes("TAKER")), "the fill with its fee");
  });

  await step("an order off the tick shows the reason", async () => {
    await page.fill('[data-testid="order-price"]', "65000.001");
    await page.fill('[data-testid="order-quantity"]', "0.10000");
    await page.press('[data-testid="order-price"]', "Enter");
    await until(() => document.querySelector('[data-testid="order-error"]')?.textContent === "price must be a multiple of 0.01", "the tick error");
  });

  await step("an order the exchange refuses shows its reason", async () => {
    // More than the account holds: only the exchange knows, and says so.
    await page.fill('[data-testid="order-price"]', "64000.00");
    await page.fill('[data-testid="order-quantity"]', "100.00000");
    await page.press('[data-testid="order-price"]', "Enter");
    await until(() => /^Rejected: .+/.test(document.querySelector('[data-testid="order-rejected"]')?.textContent ?? ""), "the exchange's reason");
    figures.rejection_shown = await page.textContent('[data-testid="order-rejected"]');
  });

  await step("the exchange restarts: reconnecting, then live again", async () => {
    await exchange.stop();
    await until(() => document.querySelector('[data-testid="status"]')?.dataset.status === "reconnecting", "the reconnecting status");
    await page.screenshot({ path: join(SHOTS, `${String(stepNo).padStart(2, "0")}-reconnecting.png`) });
    await exchange.start();
    await until(() => document.querySelector('[data-testid="status"]')?.dataset.status === "live", "the live status after the restart", 40_000);
    await until(() => document.querySelectorAll('[data-testid="book-ask"]').length >= 2, "the book from a fresh snapshot");
    const depth = await (await fetch(`${exchange.url}/market-data/${SYMBOL}/depth?limit=1000`)).json();
    await until(() => window.__exchange.book.seq >= 0, "the book's sequence");
    const b = await pageBook();
    check(b.seq === depth.sequence, `the page's book is at the exchange's sequence (${b.seq} vs ${depth.sequence})`);
  });

  await step("the book stays exact while the exchange trades", async () => {
    const makerB = exchange.client(await exchange.account({ USD: "100000000", BTC: "10000" }));
    const takers = [maker, makerB];
    await page.evaluate(() => (window.__longTasks = []));
    let sent = 0;
    let refused = 0;
    const started = Date.now();
    const end = started + LOAD_SECONDS * 1000;
    const worker = async (w) => {
      let i = 0;
      while (Date.now() < end) {
        const due = started + (sent * 1000) / LOAD_RATE;
        if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
        sent += 1;
        i += 1;
        const buy = (i + w) % 2 === 0;
        const cross = i % 4 === 0;
        const ticks = 6_500_000 + (buy ? -1 : 1) * (cross ? -20 : 1 + ((i * 7919 + w) % 400));
        const order = { symbol: SYMBOL, side: buy ? "BUY" : "SELL", type: "LIMIT", price: (ticks / 100).toFixed(2), quantity: "0.00100", ...(cross ? { time_in_force: "IOC" } : {}) };
        await takers[w % 2].call("POST", "/orders", order).catch(() => (refused += 1));
      }
    };
    await Promise.all(Array.from({ length: 48 }, (_, w) => worker(w)));
    const seconds = (Date.now() - started) / 1000;
    figures.load = { orders: sent, refused, seconds: Number(seconds.toFixed(1)), orders_per_second: Math.round(sent / seconds) };
    const depth = await (await fetch(`${exchange.url}/market-data/${SYMBOL}/depth?limit=1000`)).json();
    await until(() => window.__exchange.book.seq >= 0, "a synced book");
    await page.waitForFunction((seq) => window.__exchange.book.seq >= seq, depth.sequence, { timeout: STEP_TIMEOUT });
    const b = await pageBook();
    const strip = (levels) => levels.map(([p, q]) => [Number(p).toFixed(2), q]);
    check(b.seq === depth.sequence, `the page is at the exchange's sequence (${b.seq} vs ${depth.sequence})`);
    check(JSON.stringify(strip(b.bids)) === JSON.stringify(strip(depth.bids)), "the page's bids are the exchange's");
    check(JSON.stringify(strip(b.asks)) === JSON.stringify(strip(depth.asks)), "the page's asks are the exchange's");
    const tasks = await page.evaluate(() => window.__longTasks);
    figures.long_tasks_over_50ms = tasks.length;
    figures.longest_task_ms = Math.round(Math.max(0, ...tasks));
    figures.book_levels = b.bids.length + b.asks.length;
    figures.book_resyncs = b.resyncs;
  });

  await step("a tab hidden for a while re-syncs from fresh snapshots when it comes back", async () => {
    const before = sockets;
    const hide = (hidden) =>
      page.evaluate((h) => {
        Object.defineProperty(document, "hidden", { configurable: true, get: () => h });
        document.dispatchEvent(new Event("visibilitychange"));
      }, hidden);
    await hide(true);
    await page.waitForTimeout(5500);
    await hide(false);
    await until(() => document.querySelector('[data-testid="status"]')?.dataset.status === "live", "the live status");
    check(sockets > before, "a new connection after the tab came back");
    await until(() => window.__exchange.book.seq >= 0, "a fresh snapshot");
    const depth = await (await fetch(`${exchange.url}/market-data/${SYMBOL}/depth?limit=1000`)).json();
    await page.waitForFunction((seq) => window.__exchange.book.seq >= seq, depth.sequence, { timeout: STEP_TIMEOUT });
    const b = await pageBook();
    check(b.bids.length + b.asks.length === depth.bids.length + depth.asks.length, "the whole book again");
  });

  await step("cancel all from the keyboard", async () => {
    await page.click('[data-testid="order-price"]');
    await page.fill('[data-testid="order-price"]', "60000.00");
    await page.fill('[data-testid="order-quantity"]', "0.01000");
    await page.press('[data-testid="order-price"]', "Enter");
    await page.click("text=Open orders");
    await until(() => document.querySelectorAll('[data-testid="open-order"]').length === 1, "one open order");
    await page.keyboard.press("Alt+Shift+KeyC");
    await until(() => document.querySelectorAll('[data-testid="open-order"]').length === 0, "no open orders after Alt+Shift+C");
  });

  figures.js_shipped = jsShipped(resolve(import.meta.dirname, "../out/_next/static"));
  writeFileSync(join(SHOTS, "figures.json"), `${JSON.stringify(figures, null, 2)}\n`);
  console.log(`figures: ${JSON.stringify(figures)}`);
  console.log(`screenshots: ${SHOTS}`);
} catch (e) {
  failed = true;
  console.log(`FAILED: ${e.stack ?? e}`);
} finally {
  await browser?.close().catch(() => {});
  await exchange.cleanup();
}
process.exit(failed ? 1 : 0);

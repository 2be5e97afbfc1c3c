// The README's screenshot: `exchange --demo` on a free port, the screen after the bots have
// traded for a while, signed in with the demo account.
//
//   EXCHANGE_BIN=target/release/exchange node e2e/screenshot.mjs [out.png] [seconds]

import { chromium } from "playwright-core";
import { resolve } from "node:path";
import { Exchange, freePort } from "./exchange.mjs";

const out = resolve(process.argv[2] ?? resolve(import.meta.dirname, "../../docs/dashboard.png"));
const seconds = Number(process.argv[3] ?? 90);
const exchange = new Exchange(await freePort(), ["--demo"]);
let browser;
try {
  await exchange.start();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
    const [width, height] = (process.env.VIEWPORT ?? "1440x1000").split("x").map(Number);
  const page = await (await browser.newContext({ viewport: { width, height } })).newPage();
  await page.goto(`${exchange.url}/?symbol=BTC-USD`);
  await page.click("text=Sign in");
  await page.click('[data-testid="try-demo"]');
  await page.waitForSelector('[data-testid="account-id"]');
  await page.waitForTimeout(seconds * 1000);
  // One of the trader's own orders, resting below the market.
  const ticker = await (await fetch(`${exchange.url}/market-data/BTC-USD`)).json();
  const price = (Math.floor(Number(ticker.best_bid ?? "65000") * 0.995 * 100) / 100).toFixed(2);
  await page.fill('[data-testid="order-price"]', price);
  await page.fill('[data-testid="order-quantity"]', "0.05000");
  await page.press('[data-testid="order-quantity"]', "Enter");
  await page.waitForSelector('[data-testid="order-done"]');
  await page.click("text=Open orders");
  await page.waitForTimeout(500);
  await page.screenshot({ path: out });
  console.log(`screenshot: ${out}`);
} finally {
  await browser?.close();
  await exchange.cleanup();
}

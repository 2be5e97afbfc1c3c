// `npm run dev` against a running exchange: the dev server (hot reload) proxies the REST API
// and the WebSocket, so the screen goes live with a book. Both on free ports; bounded in time.

import { spawn } from "node:child_process";
import { chromium } from "playwright-core";
import { Exchange, freePort } from "./exchange.mjs";

const exchange = new Exchange(await freePort());
const port = await freePort();
let dev;
let browser;
let failed = false;
try {
  await exchange.start();
  const maker = exchange.client(await exchange.account({ USD: "1000000", BTC: "100" }));
  await maker.call("POST", "/orders", { symbol: "BTC-USD", side: "SELL", type: "LIMIT", price: "65100.00", quantity: "0.50000" });
  dev = spawn("npx", ["next", "dev", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: new URL("..", import.meta.url),
    env: { ...process.env, EXCHANGE_URL: exchange.url, NEXT_TELEMETRY_DISABLED: "1" },
    stdio: "ignore",
    detached: true,
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  const page = await browser.newPage();
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await page.goto(`http://127.0.0.1:${port}/?symbol=BTC-USD`, { timeout: 30_000 });
      break;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await page.waitForFunction(
    () =>
      document.querySelector('[data-testid="status"]')?.dataset.status === "live" &&
      [...document.querySelectorAll('[data-testid="book-ask"]')].some((e) => e.dataset.price === "65100"),
    undefined,
    { timeout: 60_000 },
  );
  console.log("npm run dev: the screen is live through the dev server's proxy (REST and WebSocket)");
} catch (e) {
  failed = true;
  console.log(`FAILED: ${e.stack ?? e}`);
} finally {
  await browser?.close().catch(() => {});
  if (dev) process.kill(-dev.pid, "SIGTERM");
  await exchange.cleanup();
}
process.exit(failed ? 1 : 0);

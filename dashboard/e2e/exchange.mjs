// The exchange, for the browser test: started on a free port in a fresh data directory, and a
// signing client for the test's own accounts (the same scheme as the README's).

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

/** The exchange binary: EXCHANGE_BIN, or the newest build in target/. */
export function exchangeBin() {
  if (process.env.EXCHANGE_BIN) return process.env.EXCHANGE_BIN;
  for (const profile of ["ci", "release", "debug"]) {
    const bin = join(ROOT, "target", profile, "exchange");
    if (existsSync(bin)) return bin;
  }
  throw new Error("no exchange binary: build it (cargo build --release) or set EXCHANGE_BIN");
}

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export class Exchange {
  constructor(port, args = []) {
    this.port = port;
    this.args = args;
    this.dataDir = mkdtempSync(join(tmpdir(), "exchange-e2e-"));
    this.url = `http://127.0.0.1:${port}`;
    this.proc = null;
  }

  /** Starts the exchange and waits for its "listening" line (at most 60 s). */
  async start() {
    const proc = spawn(
      exchangeBin(),
      ["--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir, "--log", "warn", "--fsync", "false", ...this.args],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    this.proc = proc;
    await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error("the exchange did not start in 60 s")), 60_000);
      let out = "";
      proc.stdout.on("data", (d) => {
        out += d;
        if (out.includes("listening on")) {
          clearTimeout(timer);
          ok();
        }
      });
      proc.on("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`the exchange exited with ${code}`));
      });
    });
    this.admin = JSON.parse(readFileSync(join(this.dataDir, "admin-key.json"), "utf8"));
  }

  /** Stops it gracefully (SIGTERM) and waits for it to exit. */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((ok) => proc.on("exit", ok));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
    this.proc = null;
  }

  async cleanup() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  client(creds) {
    return new Client(this.url, creds);
  }

  /** A new account with a read-and-trade key and these deposits. */
  async account(deposits) {
    const admin = this.client({ key: this.admin.key_id, secret: this.admin.secret });
    const { account } = await admin.call("POST", "/admin/accounts", {});
    const key = await admin.call("POST", `/admin/accounts/${account}/keys`, { permissions: ["read", "trade"] });
    for (const [asset, amount] of Object.entries(deposits)) {
      await admin.call("POST", "/admin/deposits", { id: `e2e-${account}-${asset}`, account, asset, amount });
    }
    return { account, key: key.key_id, secret: key.secret };
  }
}

let nonce = 0;

export class Client {
  constructor(base, creds) {
    this.base = base;
    this.creds = creds;
  }

  /** A signed request; resolves to the JSON body, rejects with status and body on an error. */
  async call(method, path, body) {
    const [route, query = ""] = path.split("?");
    const text = body === undefined ? "" : JSON.stringify(body);
    const signed = `${query ? `${query}&` : ""}timestamp=${Date.now()}&nonce=${++nonce}`;
    const sig = createHmac("sha256", this.creds.secret).update(`${method}\n${route}\n${signed}\n${text}`).digest("hex");
    const resp = await fetch(`${this.base}${route}?${signed}&signature=${sig}`, {
      method,
      headers: { "X-API-KEY": this.creds.key, ...(text ? { "content-type": "application/json" } : {}) },
      body: text || undefined,
    });
    const answer = await resp.json().catch(() => null);
    if (!resp.ok) throw Object.assign(new Error(`${method} ${path}: ${resp.status} ${JSON.stringify(answer)}`), { status: resp.status, answer });
    return answer;
  }
}

// Request signing in the browser, the scheme the README documents: the hex HMAC-SHA256, keyed
// with the secret, of `METHOD\nPATH\nQUERY\nBODY`, with Web Crypto. The secret never leaves
// the browser: only the key id and the signature are sent.

const encoder = new TextEncoder();

export function payload(method: string, path: string, query: string, body: string): string {
  return `${method}\n${path}\n${query}\n${body}`;
}

export async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

let lastTimestamp = 0;
let nonce = 0;

/** A timestamp in milliseconds that never repeats within this page. */
export function timestamp(now: number = Date.now()): number {
  lastTimestamp = Math.max(now, lastTimestamp + 1);
  return lastTimestamp;
}

/**
 * The query to send with a signed request: the request's own query, then `timestamp`, a
 * `nonce`, and the `signature` of all that.
 */
export async function signedQuery(
  secret: string,
  method: string,
  path: string,
  query: string,
  body: string,
  ts: number = timestamp(),
): Promise<string> {
  nonce += 1;
  const signed = `${query ? `${query}&` : ""}timestamp=${ts}&nonce=${nonce}`;
  const signature = await hmacHex(secret, payload(method, path, signed, body));
  return `${signed}&signature=${signature}`;
}

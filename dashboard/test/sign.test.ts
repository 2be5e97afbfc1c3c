import { describe, expect, it } from "vitest";
import { hmacHex, payload, signedQuery, timestamp } from "@/lib/sign";

describe("request signing", () => {
  it("is HMAC-SHA256 in hex (RFC 4231 test case 2, as the server's tests check)", async () => {
    expect(await hmacHex("Jefe", "what do ya want for nothing?")).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
  });

  it("signs METHOD, PATH, QUERY and BODY joined by newlines", () => {
    expect(payload("POST", "/orders", "timestamp=1", "{}")).toBe("POST\n/orders\ntimestamp=1\n{}");
  });

  it("appends timestamp, nonce and the signature of everything before it", async () => {
    const q = await signedQuery("s3cret", "GET", "/orders", "symbol=BTC-USD", "", 1700000000000);
    const [signed, signature] = q.split("&signature=");
    expect(signed).toMatch(/^symbol=BTC-USD&timestamp=1700000000000&nonce=\d+$/);
    expect(signature).toBe(await hmacHex("s3cret", payload("GET", "/orders", signed, "")));
  });

  it("never repeats a timestamp, so two identical requests are not replays", () => {
    const a = timestamp(5);
    const b = timestamp(5);
    expect(b).toBeGreaterThan(a);
  });
});

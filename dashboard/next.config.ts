import type { NextConfig } from "next";
import { PHASE_DEVELOPMENT_SERVER } from "next/constants";

// Built as a static export (`out/`), which the exchange's gateway serves at `/`. Under
// `npm run dev` the API and the WebSocket are proxied to a running exchange instead
// (EXCHANGE_URL, default http://127.0.0.1:8080).
const exchange = process.env.EXCHANGE_URL ?? "http://127.0.0.1:8080";
const apiPrefixes = ["symbols", "market-data", "orders", "order", "account", "ws", "demo", "health"];

export default function config(phase: string): NextConfig {
  if (phase === PHASE_DEVELOPMENT_SERVER) {
    return {
      // The screen is opened at 127.0.0.1 as often as at localhost; hot reload must work there.
      allowedDevOrigins: ["127.0.0.1"],
      agentRules: false,
      experimental: { agentUpgrade: false },
      async rewrites() {
        return apiPrefixes.flatMap((p) => [
          { source: `/${p}`, destination: `${exchange}/${p}` },
          { source: `/${p}/:rest*`, destination: `${exchange}/${p}/:rest*` },
        ]);
      },
    };
  }
  return { output: "export", images: { unoptimized: true }, productionBrowserSourceMaps: false };
}

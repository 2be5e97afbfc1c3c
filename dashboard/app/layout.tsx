import type { Metadata, Viewport } from "next";
import "./globals.css";

export const metadata: Metadata = {
  title: "exchange",
  description: "Trading screen of the exchange: markets, chart, book, trades, orders",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1, themeColor: "#0d1016" };

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body className="min-h-screen text-[13px] antialiased">{children}</body>
    </html>
  );
}

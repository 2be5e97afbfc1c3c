// Number formatting for the screen: every price and quantity with its symbol's own
// precision, thousands grouped, computed exactly from the server's decimal strings.

import { type Dec, dec, places, toFixed } from "./decimal";

/** Groups the integer part in thousands: "1234567.5" -> "1,234,567.5". */
export function group(text: string): string {
  const neg = text.startsWith("-");
  const body = neg ? text.slice(1) : text;
  const [int, frac] = body.split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg ? "-" : "") + grouped + (frac !== undefined ? `.${frac}` : "");
}

/** A decimal string (or value) shown with the places of `step`, grouped. */
export function fmt(value: string | Dec | null | undefined, step: string): string {
  if (value === null || value === undefined || value === "") return "–";
  const d = typeof value === "string" ? dec(value) : value;
  return group(toFixed(d, places(step)));
}

/** A percentage string from the server ("-1.25") shown with its sign ("+1.25%"). */
export function pct(value: string | null | undefined): string {
  if (value === null || value === undefined) return "–";
  return value.startsWith("-") ? `${value}%` : `+${value}%`;
}

/** A time in milliseconds as HH:MM:SS, in the viewer's zone. */
export function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// Exact decimal arithmetic over BigInt, for prices, quantities and totals. Money never goes
// through a JavaScript number: a value is `v / 10^s` with `v` a BigInt.

export type Dec = { readonly v: bigint; readonly s: number };

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

const pow10 = (n: number): bigint => 10n ** BigInt(n);

/** Parses a plain decimal string ("12", "0.50", "-3.1"); no exponent, no spaces. */
export function parse(text: string): Dec | null {
  const m = DECIMAL.exec(text.trim());
  if (!m) return null;
  const frac = m[3] ?? "";
  const v = BigInt(m[2] + frac);
  return { v: m[1] ? -v : v, s: frac.length };
}

/** Parses a string the server sent (always a plain decimal). */
export function dec(text: string): Dec {
  const d = parse(text);
  if (!d) throw new Error(`not a decimal: ${text}`);
  return d;
}

export const ZERO: Dec = { v: 0n, s: 0 };

function align(a: Dec, b: Dec): [bigint, bigint, number] {
  const s = Math.max(a.s, b.s);
  return [a.v * pow10(s - a.s), b.v * pow10(s - b.s), s];
}

export function add(a: Dec, b: Dec): Dec {
  const [x, y, s] = align(a, b);
  return { v: x + y, s };
}

export function sub(a: Dec, b: Dec): Dec {
  const [x, y, s] = align(a, b);
  return { v: x - y, s };
}

export function mul(a: Dec, b: Dec): Dec {
  return { v: a.v * b.v, s: a.s + b.s };
}

export function cmp(a: Dec, b: Dec): number {
  const [x, y] = align(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const isZero = (a: Dec): boolean => a.v === 0n;

/** a / b to `scale` places, rounded toward minus infinity; null when b is zero. */
export function divFloor(a: Dec, b: Dec, scale: number): Dec | null {
  if (b.v === 0n) return null;
  // a.v/10^a.s / (b.v/10^b.s) * 10^scale = a.v * 10^(b.s + scale) / (b.v * 10^a.s)
  let num = a.v * pow10(b.s + scale);
  let den = b.v * pow10(a.s);
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  let q = num / den;
  if (num % den !== 0n && num < 0n) q -= 1n;
  return { v: q, s: scale };
}

/** Whether a is a whole multiple of step (step > 0). */
export function isMultiple(a: Dec, step: Dec): boolean {
  const [x, y] = align(a, step);
  return y !== 0n && x % y === 0n;
}

/** The largest multiple of step at or below a. */
export function floorTo(a: Dec, step: Dec): Dec {
  const [x, y, s] = align(a, step);
  let q = x / y;
  if (x % y !== 0n && x < 0n) q -= 1n;
  return { v: q * y, s };
}

/** The smallest multiple of step at or above a. */
export function ceilTo(a: Dec, step: Dec): Dec {
  const [x, y, s] = align(a, step);
  let q = x / y;
  if (x % y !== 0n && x > 0n) q += 1n;
  return { v: q * y, s };
}

/** The number of decimal places a step such as "0.01" has (trailing zeros ignored). */
export function places(step: string): number {
  const frac = step.split(".")[1] ?? "";
  return frac.replace(/0+$/, "").length;
}

/** The value with exactly `n` places: rounded toward zero when it has more. */
export function toFixed(a: Dec, n: number): string {
  let v = a.v;
  if (a.s > n) v = v / pow10(a.s - n);
  else v = v * pow10(n - a.s);
  const neg = v < 0n;
  let digits = (neg ? -v : v).toString().padStart(n + 1, "0");
  if (n > 0) digits = `${digits.slice(0, -n)}.${digits.slice(-n)}`;
  return (neg && /[1-9]/.test(digits) ? "-" : "") + digits;
}

/** The value with no trailing zeros ("1.500" -> "1.5", "2.000" -> "2"). */
export function toPlain(a: Dec): string {
  const text = toFixed(a, a.s);
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

/** A number for drawing only (chart axes, bar widths); never for money. */
export const toNumber = (a: Dec): number => Number(a.v) / 10 ** a.s;

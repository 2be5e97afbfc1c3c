"use client";

import { useEffect, useRef } from "react";
import { grouped } from "@/lib/book";
import { toNumber } from "@/lib/decimal";
import { useSelect } from "@/lib/use";

const LEVELS = 100;

/** Cumulative depth on each side of the spread, drawn on a canvas (drawing only, numbers). */
export default function DepthChart() {
  const seq = useSelect((s) => s.book.seq);
  const book = useSelect((s) => s.book);
  const tick = useSelect((s) => s.rules()?.tick_size ?? "0.01");
  const canvas = useRef<HTMLCanvasElement>(null);

  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext("2d");
    if (!c || !ctx) return;
    const ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (c.width !== w * ratio || c.height !== h * ratio) {
      c.width = w * ratio;
      c.height = h * ratio;
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const bids = grouped(book.bids, "bids", tick, LEVELS).map((l) => [toNumber(l.price), toNumber(l.cumulative)]);
    const asks = grouped(book.asks, "asks", tick, LEVELS).map((l) => [toNumber(l.price), toNumber(l.cumulative)]);
    if (!bids.length && !asks.length) return;
    const prices = [...bids, ...asks].map(([p]) => p);
    const lo = Math.min(...prices);
    const hi = Math.max(...prices);
    const top = Math.max(...[...bids, ...asks].map(([, q]) => q)) * 1.1;
    const x = (p: number) => (hi === lo ? w / 2 : ((p - lo) / (hi - lo)) * (w - 2) + 1);
    const y = (q: number) => h - (q / top) * (h - 4);
    const draw = (pts: number[][], stroke: string, fill: string) => {
      if (!pts.length) return;
      ctx.beginPath();
      ctx.moveTo(x(pts[0][0]), h);
      let prev = h;
      for (const [p, q] of pts) {
        ctx.lineTo(x(p), prev);
        ctx.lineTo(x(p), y(q));
        prev = y(q);
      }
      ctx.lineTo(x(pts[pts.length - 1][0]), h);
      ctx.closePath();
      ctx.fillStyle = fill;
      ctx.fill();
      ctx.strokeStyle = stroke;
      ctx.stroke();
    };
    draw(bids, "#26a69a", "rgba(38,166,154,0.18)");
    draw(asks, "#ef5350", "rgba(239,83,80,0.18)");
  }, [book, seq, tick]);

  return (
    <section className="panel" aria-label="Depth chart">
      <div className="panel-title">Depth</div>
      <canvas ref={canvas} className="block h-[120px] w-full" data-testid="depth-chart" />
    </section>
  );
}

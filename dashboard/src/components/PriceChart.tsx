"use client";

import { useEffect, useRef, useState } from "react";
import {
  CandlestickSeries,
  ColorType,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
  createChart,
} from "lightweight-charts";
import { get, type Candle } from "@/lib/api";
import { places } from "@/lib/decimal";
import { store } from "@/lib/store";
import { useSelect } from "@/lib/use";

export const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"] as const;
type Interval = (typeof INTERVALS)[number];

const UP = "#26a69a";
const DOWN = "#ef5350";

type Bar = { time: UTCTimestamp; open: number; high: number; low: number; close: number };

// Chart coordinates are numbers: drawing only, never money.
const bar = (start: number, o: string, h: string, l: string, c: string): Bar => ({
  time: Math.floor(start / 1000) as UTCTimestamp,
  open: Number(o),
  high: Number(h),
  low: Number(l),
  close: Number(c),
});

const volumeBar = (b: Bar, volume: string) => ({
  time: b.time,
  value: Number(volume),
  color: b.close >= b.open ? `${UP}66` : `${DOWN}66`,
});

/** Candlesticks with volume: history over REST, the forming candle from its channel. */
export default function PriceChart() {
  const symbol = useSelect((s) => s.symbol);
  const tick = useSelect((s) => s.rules()?.tick_size ?? "0.01");
  const epoch = useSelect((s) => s.epoch);
  const [interval, setInterval] = useState<Interval>("1m");
  const [bars, setBars] = useState(0);
  const el = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const candles = useRef<ISeriesApi<"Candlestick"> | null>(null);
  const volume = useRef<ISeriesApi<"Histogram"> | null>(null);

  useEffect(() => {
    if (!el.current) return;
    const c = createChart(el.current, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "#161a22" },
        textColor: "#8a93a6",
        attributionLogo: true,
      },
      grid: { vertLines: { color: "#1f2430" }, horzLines: { color: "#1f2430" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#262b36", barSpacing: 10, rightOffset: 4 },
      rightPriceScale: { borderColor: "#262b36" },
    });
    candles.current = c.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      wickUpColor: UP,
      wickDownColor: DOWN,
      borderVisible: false,
    });
    volume.current = c.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
    volume.current.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    chart.current = c;
    return () => {
      c.remove();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    const p = places(tick);
    candles.current?.applyOptions({
      priceFormat: { type: "price", precision: p, minMove: 10 ** -p },
    });
  }, [tick]);

  useEffect(() => {
    if (!symbol) return;
    let live = true;
    const channel = `candles.${symbol}.${interval}`;
    let last = 0;
    const load = get<Candle[]>(`/market-data/${symbol}/candles?interval=${interval}&limit=500`).then((list) => {
      if (!live) return;
      const data = list.map((k) => bar(k.open_time, k.open, k.high, k.low, k.close));
      candles.current?.setData(data);
      volume.current?.setData(data.map((b, i) => volumeBar(b, list[i].volume)));
      last = data.length ? data[data.length - 1].time : 0;
      setBars(data.length);
      chart.current?.timeScale().scrollToRealTime();
    });
    const off = store.listen(channel, (m) => {
      const k = m as { start: number; open: string | null; high: string; low: string; close: string; volume: string };
      if (k.open === null) return;
      void load.then(() => {
        if (!live) return;
        const b = bar(k.start, k.open!, k.high, k.low, k.close);
        if (b.time < last) return;
        last = b.time;
        candles.current?.update(b);
        volume.current?.update(volumeBar(b, k.volume));
        setBars((n) => n || 1);
      });
    });
    return () => {
      live = false;
      off();
    };
  }, [symbol, interval, epoch]);

  return (
    <section className="panel flex h-[380px] flex-col xl:h-full xl:min-h-[440px]" aria-label="Price chart">
      <div className="panel-title">
        <span>Chart</span>
        <div className="ml-2 flex gap-1" role="tablist" aria-label="Interval">
          {INTERVALS.map((i) => (
            <button
              key={i}
              role="tab"
              className="tab normal-case"
              aria-selected={i === interval}
              onClick={() => setInterval(i)}
            >
              {i}
            </button>
          ))}
        </div>
        <span className="ml-auto normal-case num" data-testid="chart-bars">
          {bars} {bars === 1 ? "candle" : "candles"}
        </span>
      </div>
      <div ref={el} className="min-h-0 flex-1" data-testid="chart" />
    </section>
  );
}

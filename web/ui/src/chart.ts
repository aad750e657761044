// Charts: a uPlot time-series chart with legend and tooltips-by-legend, and a canvas sparkline.
// Colours come from CSS variables so that light and dark both read well.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { MatrixSeries } from "./api";
import { formatValue, seriesName } from "./units";

const PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#64748b"];

export function color(i: number): string {
  return PALETTE[i % PALETTE.length];
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

/** Align series on one time axis (union of timestamps), gaps as null. */
export function align(series: MatrixSeries[]): uPlot.AlignedData {
  const times = new Set<number>();
  for (const s of series) for (const [t] of s.values) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const col: (number | null)[] = new Array(xs.length).fill(null);
    for (const [t, v] of s.values) {
      const n = Number(v);
      col[index.get(t)!] = Number.isFinite(n) ? n : null;
    }
    return col;
  });
  return [xs, ...ys] as uPlot.AlignedData;
}

export interface ChartOptions {
  unit?: string;
  legends?: (string | undefined)[];
  height?: number;
  min?: number;
  max?: number;
  range?: [number, number];
  /** Called with epoch seconds when the user drags across the chart. */
  onZoom?: (from: number, to: number) => void;
}

/** A chart that keeps its uPlot instance across refreshes while the series stay the same. */
export class TimeChart {
  private plot: uPlot | null = null;
  private key = "";
  private observer: ResizeObserver;

  constructor(private readonly el: HTMLElement, private readonly opts: ChartOptions = {}) {
    this.observer = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.opts.height ?? 220 });
    });
    this.observer.observe(el);
  }

  private width(): number {
    return Math.max(this.el.clientWidth, 200);
  }

  /** `names` is one display name per series. */
  set(series: MatrixSeries[], names: string[], range?: [number, number], dashed: boolean[] = []): void {
    const data = align(series);
    if (range) this.opts.range = range;
    const key = names.join("\u0000") + document.documentElement.dataset.theme;
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      if (this.opts.range) this.plot.setScale("x", { min: this.opts.range[0], max: this.opts.range[1] });
      return;
    }
    this.plot?.destroy();
    this.key = key;
    const unit = this.opts.unit ?? "short";
    const axis = cssVar("--muted");
    const grid = cssVar("--grid");
    const fmt = (_u: uPlot, v: number | null) => formatValue(v, unit);
    const r = this.opts.range;
    this.plot = new uPlot(
      {
        width: this.width(),
        height: this.opts.height ?? 220,
        cursor: { points: { size: 6 }, focus: { prox: 16 } },
        focus: { alpha: 0.35 },
        hooks: {
          // Dragging across a chart zooms the whole page to that span (kept in the URL).
          setSelect: [
            (u) => {
              if (u.select.width < 5 || !this.opts.onZoom) return;
              const from = u.posToVal(u.select.left, "x");
              const to = u.posToVal(u.select.left + u.select.width, "x");
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              this.opts.onZoom(from, to);
            },
          ],
        },
        legend: { show: true, live: true },
        scales: {
          x: { time: true, ...(r ? { range: (): uPlot.Range.MinMax => [this.opts.range![0], this.opts.range![1]] } : {}) },
          y: {
            range: (_u, dmin, dmax) => {
              const lo = this.opts.min ?? Math.min(dmin ?? 0, 0);
              let hi = this.opts.max ?? (dmax ?? 1);
              if (hi <= lo) hi = lo + 1;
              return [lo, this.opts.max ?? hi * 1.05];
            },
          },
        },
        axes: [
          { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
          {
            stroke: axis,
            grid: { stroke: grid, width: 1 },
            ticks: { stroke: grid },
            size: 86,
            values: (_u, splits) => splits.map((v) => formatValue(v, unit)),
          },
        ],
        series: [
          { value: (_u, t) => (t == null ? "" : new Date(t * 1000).toLocaleTimeString()) },
          ...names.map((name, i) => {
            // An earlier period's series takes the colour of the series it compares with.
            const c = color(dashed[i] ? i - dashed.filter((d) => !d).length : i);
            return {
            label: name,
            stroke: c,
            width: dashed[i] ? 1 : 1.5,
            dash: dashed[i] ? [5, 4] : undefined,
            fill: series.length === 1 ? c + "22" : undefined,
            value: fmt,
            spanGaps: false,
            points: { show: false },
          };
          }),
        ],
      },
      data,
      this.el,
    );
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}

/**
 * A small line without axes, for tables of hosts: drawn straight on one canvas.
 * The overview holds four per host (200 for 50 hosts); a uPlot instance each
 * (its own DOM, a layout read on creation) cost more than all the drawing.
 * The line breaks where samples stop for more than two steps (a host down).
 * A lone sample (a host that just started, or a run cut off by gaps) is a dot,
 * and a flat series a line inside the canvas (0 on the bottom edge, not under it):
 * a new host shows something from its first sample.
 */
export class Sparkline {
  private readonly canvas: HTMLCanvasElement;
  static readonly WIDTH = 100;
  static readonly HEIGHT = 28;
  /** Radius of a lone sample's dot, and the margin that keeps lines inside the canvas. */
  static readonly DOT = 2;

  constructor(el: HTMLElement, private readonly colour: string, private readonly max?: number) {
    this.canvas = document.createElement("canvas");
    this.canvas.style.width = `${Sparkline.WIDTH}px`;
    this.canvas.style.height = `${Sparkline.HEIGHT}px`;
    this.canvas.style.display = "block";
    el.append(this.canvas);
  }

  set(values: [number, string][], range: [number, number]): void {
    const W = Sparkline.WIDTH;
    const H = Sparkline.HEIGHT;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(W * dpr)) {
      this.canvas.width = Math.round(W * dpr);
      this.canvas.height = Math.round(H * dpr);
    }
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const pts: [number, number][] = [];
    let top = 0;
    for (const [t, v] of values) {
      const n = Number(v);
      if (!Number.isFinite(n)) continue;
      pts.push([t, n]);
      if (n > top) top = n;
    }
    if (!pts.length) return;
    const hi = this.max ?? Math.max(top, 1e-9) * 1.1;
    const span = Math.max(range[1] - range[0], 1);
    let step = Infinity;
    for (let i = 1; i < pts.length; i++) step = Math.min(step, pts[i][0] - pts[i - 1][0]);
    const dot = Sparkline.DOT;
    // Inside the canvas, so that neither a dot nor a line at either edge is cut off.
    const x = (t: number) => Math.min(Math.max(((t - range[0]) / span) * W, dot), W - dot);
    const y = (v: number) => H - dot - (Math.min(Math.max(v, 0), hi) / hi) * (H - 2 * dot);
    // Runs of samples no more than two steps apart, each drawn as one filled line.
    const runs: [number, number][][] = [];
    for (let i = 0; i < pts.length; i++) {
      if (i === 0 || pts[i][0] - pts[i - 1][0] > 2 * step) runs.push([]);
      runs[runs.length - 1].push(pts[i]);
    }
    ctx.lineWidth = 1.25;
    ctx.lineJoin = "round";
    ctx.strokeStyle = this.colour;
    ctx.fillStyle = this.colour + "33";
    for (const run of runs) {
      ctx.beginPath();
      if (run.length === 1) {
        ctx.arc(x(run[0][0]), y(run[0][1]), dot, 0, 2 * Math.PI);
        ctx.fillStyle = this.colour;
        ctx.fill();
        ctx.fillStyle = this.colour + "33";
        continue;
      }
      run.forEach(([t, v], k) => (k ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
      ctx.stroke();
      ctx.lineTo(x(run[run.length - 1][0]), H);
      ctx.lineTo(x(run[0][0]), H);
      ctx.closePath();
      ctx.fill();
    }
  }

  destroy(): void {
    this.canvas.remove();
  }
}

export { seriesName };

// Time ranges as they appear in the URL: "now-1h" .. "now", or epoch milliseconds.

export interface Range { from: string; to: string }

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export const PRESETS: [string, string][] = [
  ["now-5m", "Last 5 minutes"],
  ["now-15m", "Last 15 minutes"],
  ["now-1h", "Last 1 hour"],
  ["now-3h", "Last 3 hours"],
  ["now-6h", "Last 6 hours"],
  ["now-12h", "Last 12 hours"],
  ["now-24h", "Last 24 hours"],
  ["now-2d", "Last 2 days"],
  ["now-7d", "Last 7 days"],
  ["now-30d", "Last 30 days"],
];

export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2]] : null;
}

export function formatDuration(seconds: number): string {
  for (const [u, n] of [["w", 604800], ["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (seconds >= n && seconds % n === 0) return `${seconds / n}${u}`;
  }
  return `${seconds}s`;
}

/** Seconds since the epoch for one end of a range; null when it does not parse. */
export function resolve(text: string, now = Date.now() / 1000): number | null {
  if (text === "now") return now;
  const rel = /^now-(.+)$/.exec(text);
  if (rel) {
    const d = parseDuration(rel[1]);
    return d === null ? null : now - d;
  }
  if (/^\d{10,13}$/.test(text)) return text.length === 13 ? Number(text) / 1000 : Number(text);
  const t = Date.parse(text);
  return Number.isNaN(t) ? null : t / 1000;
}

export function bounds(r: Range): [number, number] {
  const now = Date.now() / 1000;
  const end = resolve(r.to, now) ?? now;
  const start = resolve(r.from, now) ?? end - 3600;
  return [Math.floor(Math.min(start, end - 1)), Math.floor(end)];
}

const NICE = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/** A step giving about `points` points, rounded to a value a person would pick; at least 5 s. */
export function autoStep(start: number, end: number, points = 240): number {
  const raw = Math.max((end - start) / points, 5);
  return NICE.find((n) => n >= raw) ?? Math.ceil(raw / 86400) * 86400;
}

/** Grafana's $__rate_interval for a 10 s collection interval: max(step + 10s, 4 × 10s). */
export function rateInterval(step: number): string {
  return formatDuration(Math.max(step + 10, 40));
}

export function describe(r: Range): string {
  const preset = PRESETS.find(([f]) => f === r.from && r.to === "now");
  if (preset) return preset[1];
  const [s, e] = bounds(r);
  const fmt = (t: number) => new Date(t * 1000).toLocaleString();
  return `${fmt(s)} – ${fmt(e)}`;
}

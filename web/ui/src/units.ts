// Value formatting by unit, the way Grafana names units: percent, percentunit,
// bytes, Bps, s, ms, reqps, short.

const SI = ["", "k", "M", "G", "T", "P"];
const IEC = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

function trim(n: number, digits = 3): string {
  if (!isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a === 0) return "0";
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1).replace(/\.0$/, "");
  return Number(n.toPrecision(digits)).toString();
}

function scaled(n: number, base: number, names: string[], suffix = ""): string {
  let i = 0;
  let v = n;
  while (Math.abs(v) >= base && i < names.length - 1) {
    v /= base;
    i++;
  }
  return `${trim(v)} ${names[i]}${suffix}`.trim();
}

export function formatValue(v: number | null | undefined, unit = "short"): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (!isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  switch (unit) {
    case "percent":
      return `${trim(v)}%`;
    case "percentunit":
      return `${trim(v * 100)}%`;
    case "bytes":
      return scaled(v, 1024, IEC);
    case "Bps":
      return scaled(v, 1024, IEC, "/s");
    case "bps":
      return scaled(v, 1000, SI.map((p) => `${p}b`), "/s");
    case "s":
      if (Math.abs(v) < 1e-3 && v !== 0) return `${trim(v * 1e6)} µs`;
      if (Math.abs(v) < 1) return `${trim(v * 1000)} ms`;
      if (Math.abs(v) < 120) return `${trim(v)} s`;
      if (Math.abs(v) < 7200) return `${trim(v / 60)} min`;
      if (Math.abs(v) < 172800) return `${trim(v / 3600)} h`;
      return `${trim(v / 86400)} d`;
    case "ms":
      return formatValue(v / 1000, "s");
    case "reqps":
      return `${scaled(v, 1000, SI)} req/s`;
    case "ops":
      return `${scaled(v, 1000, SI)} ops/s`;
    case "bool":
      return v ? "up" : "down";
    default:
      return scaled(v, 1000, SI);
  }
}

/** A legend from a template such as "{{host}} {{device}}", else the labels. */
export function seriesName(metric: Record<string, string>, legend?: string): string {
  if (legend) return legend.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, k) => metric[k] ?? "");
  const { __name__, ...rest } = metric;
  if (!Object.keys(rest).length) return __name__ ?? "";
  const inner = Object.entries(rest)
    .map(([k, v]) => `${k}="${v}"`)
    .join(", ");
  return `${__name__ ?? ""}{${inner}}`;
}

// Capacity planning: every filesystem and host memory with its current usage,
// growth per day and the date it would be full at the trend's pace (a least-
// squares line on the rollups over the lookback), the most urgent first. Each row
// has a small chart: the usage history, solid, and the projection, dashed.
// Data from /api/vigil/capacity (web/reports); lookback and kind in the URL.
// What stopped reporting (newest sample older than the API's stale_after) is not
// projected from its last value: it is listed apart, below, with when it was last seen.
// The global time-range picker is hidden here (main.ts): the lookback is the window.
import uPlot from "uplot";
import { ApiError, capacityReport, type CapacityData, type CapacityItem } from "../api";
import { align, color } from "../chart";
import type { Ctx, Page } from "../main";
import { card, h, setState } from "../panel";
import { current, update } from "../route";
import { formatValue } from "../units";

const LOOKBACKS: [string, string][] = [
  ["", "Lookback: default"],
  ["1d", "Lookback: 1 day"],
  ["3d", "Lookback: 3 days"],
  ["7d", "Lookback: 7 days"],
  ["14d", "Lookback: 14 days"],
  ["30d", "Lookback: 30 days"],
  ["90d", "Lookback: 90 days"],
];
const KINDS: [string, string][] = [
  ["", "Filesystems and memory"],
  ["filesystem", "Filesystems"],
  ["memory", "Memory"],
];
const RELOAD_MS = 60_000;

/** An item as the API sends it: `stale` is a status of the `stale` list, `last_seen` epoch seconds. */
type Item = CapacityItem;
/** The report with the series that stopped reporting apart (web/reports/capacity.py). */
type Report = CapacityData;

const STATUS: Record<Item["status"], [string, string]> = {
  full: ["crit", "full"],
  filling: ["warn", "filling"],
  never: ["good", "not filling"],
  unknown: ["", "not enough data"],
  stale: ["", "stopped reporting"],
};

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function what(item: Item): string {
  const host = item.labels.host ?? "";
  if (item.kind === "memory") return `${host} memory`;
  return `${host} ${item.labels.mountpoint ?? item.labels.device ?? ""}`.trim();
}

function fullIn(item: Item): string {
  if (item.status === "full") return "full now";
  if (item.days_left === null) return "never";
  const d = item.days_left;
  if (d < 1) return `${Math.max(1, Math.round(d * 24))} h`;
  if (d < 365 * 2) return `${d < 10 ? d.toFixed(1) : Math.round(d)} days`;
  return `${(d / 365).toFixed(1)} years`;
}

function growthText(perDay: number | null): string {
  if (perDay === null) return "–";
  return Math.abs(perDay) < 1 ? "0 B/day" : `${formatValue(perDay, "bytes")}/day`;
}

/** Used bytes over the lookback and the projection to the full date (or as far ahead as the lookback). */
function trendChart(el: HTMLElement, item: Item, now: number, lookback: number): uPlot | null {
  const size = item.size_bytes;
  if (!size || !item.history.length || item.available_bytes === null) return null;
  const used = item.history.map(([t, avail]) => [t, String(size - avail)] as [number, string]);
  const usedNow = size - item.available_bytes;
  const growth = item.growth_bytes_per_day ?? 0;
  // Ahead as far as the history reaches back (the trend's own evidence), at most 3 times that.
  const start = item.history[0][0];
  const seen = Math.max(Math.min(now - start, lookback), 3600);
  const end = Math.min(item.full_at ?? now + seen, now + 3 * seen);
  const projected: [number, string][] = [
    [now, String(usedNow)],
    [end, String(Math.min(size, usedNow + (growth > 0 && item.status === "filling" ? growth * ((end - now) / 86400) : 0)))],
  ];
  const data = align([
    { metric: {}, values: used },
    { metric: {}, values: projected },
  ]);
  return new uPlot(
    {
      width: 220,
      height: 48,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      axes: [{ show: false }, { show: false }],
      scales: {
        x: { time: true, range: (): uPlot.Range.MinMax => [start, Math.max(end, now + 1)] },
        y: { range: (): uPlot.Range.MinMax => [0, size] },
      },
      series: [
        {},
        { stroke: color(0), width: 1.25, fill: color(0) + "33", points: { show: false } },
        { stroke: cssVar(item.status === "never" ? "--good" : "--crit"), width: 1.25, dash: [4, 3], points: { show: false }, spanGaps: true },
      ],
    },
    data,
    el,
  );
}

export function capacityPage(root: HTMLElement, _ctx: Ctx): Page {
  const p = current().params;
  const lookback = h("select", { id: "cap-lookback", "aria-label": "Trend lookback" }, ...LOOKBACKS.map(([v, label]) => h("option", { value: v }, label)));
  lookback.value = LOOKBACKS.some(([v]) => v === p.get("lookback")) ? p.get("lookback")! : "";
  const kind = h("select", { id: "cap-kind", "aria-label": "What to list" }, ...KINDS.map(([v, label]) => h("option", { value: v }, label)));
  kind.value = KINDS.some(([v]) => v === p.get("kind")) ? p.get("kind")! : "";
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const tableCard = card("Filesystems and memory by urgency");
  tableCard.el.id = "capacity";
  const staleCard = card("Stopped reporting", "Newest sample older than the staleness threshold: not projected from its last value");
  staleCard.el.id = "capacity-stale";
  staleCard.el.hidden = true;
  setState(staleCard.el, "ok"); // shown only once a report lists something
  root.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Capacity planning"), summary),
    h("div", { class: "report-form" }, lookback, kind),
    tableCard.el,
    staleCard.el,
  );

  let charts: uPlot[] = [];
  let key = "";
  let loadedAt = 0;
  let controller: AbortController | null = null;

  for (const sel of [lookback, kind]) {
    sel.addEventListener("change", () => {
      update({ lookback: lookback.value || null, kind: kind.value || null });
      void load(true);
    });
  }

  function drawStale(d: Report): void {
    staleCard.el.hidden = d.stale.length === 0;
    const since = (t: number) => formatValue(Math.max(0, d.now - t), "s");
    const rows = d.stale.map((item) =>
      h(
        "tr",
        { "data-kind": item.kind, "data-status": item.status, "data-what": what(item) },
        h("th", { scope: "row", title: Object.entries(item.labels).map(([k, v]) => `${k}=${v}`).join(", ") }, what(item)),
        h("td", {}, new Date(item.last_seen * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })),
        h("td", { class: "num" }, `${since(item.last_seen)} ago`),
        h("td", { class: "num" }, item.used_ratio === null ? "–" : formatValue(item.used_ratio, "percentunit")),
        h("td", { class: "num" }, formatValue(item.size_bytes, "bytes")),
      ),
    );
    const head = h(
      "tr",
      {},
      ...["What", "Last seen", "Silent for", "Used then", "Size"].map((t, i) => h("th", { scope: "col", class: i >= 2 ? "num" : undefined }, t)),
    );
    staleCard.body.replaceChildren(
      h("p", { class: "quiet" }, `No sample for more than ${formatValue(d.stale_after_seconds, "s")}: a host down or a filesystem unmounted. Not projected, since the last value says nothing about now.`),
      h("div", { class: "table-wrap" }, h("table", { class: "capacity-stale" }, h("thead", {}, head), h("tbody", {}, ...rows))),
    );
    setState(staleCard.el, "ok");
  }

  function draw(d: Report): void {
    for (const c of charts) c.destroy();
    charts = [];
    const rows = d.items.map((item) => {
      const [level, label] = STATUS[item.status];
      const chartCell = h("td", { class: "trend" });
      const tr = h(
        "tr",
        { "data-kind": item.kind, "data-status": item.status, "data-what": what(item) },
        h("td", {}, h("span", { class: `badge ${level}` }, label)),
        h("th", { scope: "row", title: Object.entries(item.labels).map(([k, v]) => `${k}=${v}`).join(", ") }, what(item)),
        h("td", { class: "num" }, item.used_ratio === null ? "–" : formatValue(item.used_ratio, "percentunit")),
        h("td", { class: "num" }, formatValue(item.size_bytes, "bytes")),
        h("td", { class: "num" }, formatValue(item.available_bytes, "bytes")),
        h("td", { class: "num" }, growthText(item.growth_bytes_per_day)),
        h("td", { class: "num full-in" }, fullIn(item)),
        h("td", {}, item.full_at === null ? "–" : new Date(item.full_at * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })),
        chartCell,
      );
      const chart = trendChart(chartCell, item, d.now, d.lookback_seconds);
      if (chart) charts.push(chart);
      return tr;
    });
    const head = h(
      "tr",
      {},
      ...["Status", "What", "Used", "Size", "Available", "Growth", "Full in", "Projected full", "Trend"].map((t, i) =>
        h("th", { scope: "col", class: i >= 2 && i <= 6 ? "num" : undefined }, t),
      ),
    );
    tableCard.body.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "capacity" }, h("thead", {}, head), h("tbody", {}, ...rows))));
    const filling = d.items.filter((i) => i.status === "filling" || i.status === "full").length;
    const stale = d.stale.length ? `, ${d.stale.length} stopped reporting` : "";
    summary.textContent = `${d.items.length} item${d.items.length === 1 ? "" : "s"}, ${filling} filling${stale}; trend over ${formatValue(d.lookback_seconds, "s")}`;
    setState(tableCard.el, d.items.length ? "ok" : "empty");
    drawStale(d);
  }

  async function load(force = false): Promise<void> {
    const q = current().params;
    const params: Record<string, string> = {};
    for (const k of ["lookback", "kind"]) if (q.get(k)) params[k] = q.get(k)!;
    const k = JSON.stringify(params);
    if (!force && k === key && Date.now() - loadedAt < RELOAD_MS) return;
    controller?.abort();
    controller = new AbortController();
    if (k !== key) setState(tableCard.el, "loading");
    key = k;
    try {
      const d = await capacityReport(params, controller.signal);
      loadedAt = Date.now();
      draw(d);
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      key = "";
      setState(tableCard.el, "error", e instanceof ApiError ? e.message : String(e));
    }
  }

  return {
    refresh: () => load(),
    destroy() {
      controller?.abort();
      for (const c of charts) c.destroy();
    },
  };
}

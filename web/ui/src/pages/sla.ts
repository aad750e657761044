// SLA report: availability of each probe target or service over day, week,
// month and quarter (rolling), the error budget left against an objective,
// downtime intervals and a CSV export. Everything the page shows comes from
// /api/vigil/sla (web/reports); its parameters live in the URL. The chosen target
// is kept there by its identity (the API's `key`: metric and sorted labels), not by
// its row, so a shared link shows the same target however the rows come and go.
// The global time-range picker is hidden here (main.ts): the periods are this
// page's own rolling windows, several at once, which one range cannot say.
import { ApiError, slaReport, type SlaData, type SlaTarget } from "../api";
import type { Ctx, Page } from "../main";
import { card, h, setState } from "../panel";
import { current, update } from "../route";
import { formatValue } from "../units";

const DEFAULT_MATCH = "probe_success";
const DEFAULT_RANGE = "day,week,month,quarter";
const RELOAD_MS = 60_000;
const GAPS: [string, string][] = [
  ["down", "Gaps count as downtime"],
  ["ignore", "Gaps are left out"],
];

/** A target as the API sends it: `key` is the series' identity (web/reports/sla.py series_key). */
type Target = SlaTarget;

function percent(v: number | null, digits = 3): string {
  return v === null ? "–" : `${(v * 100).toFixed(digits)} %`;
}

function duration(seconds: number): string {
  let s = Math.round(Math.abs(seconds));
  if (s === 0) return "0 s";
  const parts: string[] = [];
  for (const [n, u] of [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)} ${u}`);
      s %= n;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

function when(t: number): string {
  return new Date(t * 1000).toLocaleString();
}

/** The URL's parameters, with defaults, as the API wants them. */
function apiParams(): Record<string, string> {
  const p = current().params;
  const out: Record<string, string> = { match: p.get("match") || DEFAULT_MATCH, range: p.get("periods") || DEFAULT_RANGE };
  const objective = p.get("objective");
  if (objective) out.objective = objective;
  const gaps = p.get("gaps");
  if (gaps) out.gaps = gaps;
  return out;
}

function budgetBar(left: number | null, seconds: number): HTMLElement {
  if (left === null) return h("span", { class: "quiet" }, "–");
  const shown = Math.max(0, Math.min(1, left));
  const level = left <= 0 ? "crit" : left < 0.25 ? "warn" : "good";
  const text = left <= 0 ? `overspent by ${duration(-seconds)}` : `${(left * 100).toFixed(1)} % left (${duration(seconds)})`;
  return h(
    "div",
    { class: `budget ${level}`, role: "meter", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(shown * 100)), "aria-label": `Error budget: ${text}` },
    h("span", { class: "budget-fill", style: `width: ${(shown * 100).toFixed(1)}%` }),
    h("span", { class: "budget-text" }, text),
  );
}

export function slaPage(root: HTMLElement, _ctx: Ctx): Page {
  const p = current().params;
  const match = h("input", { id: "sla-match", type: "text", spellcheck: "false", value: p.get("match") || DEFAULT_MATCH, "aria-label": "Series (a 0/1 selector)" });
  const objective = h("input", { id: "sla-objective", type: "number", min: "0", max: "99.9999", step: "any", inputmode: "decimal", placeholder: "from config", value: p.get("objective") || "", "aria-label": "Objective in percent" });
  const periods = h("input", { id: "sla-periods", type: "text", spellcheck: "false", value: p.get("periods") || DEFAULT_RANGE, "aria-label": "Periods: day, week, month, quarter or durations such as 36h" });
  const gaps = h("select", { id: "sla-gaps", "aria-label": "How gaps in the data count" }, ...GAPS.map(([v, label]) => h("option", { value: v }, label)));
  gaps.value = p.get("gaps") || "down";
  const csv = h("a", { id: "sla-csv", class: "button", download: "" }, "Download CSV");
  const csvDowntime = h("a", { id: "sla-csv-downtime", class: "button", download: "" }, "Downtime CSV");
  const form = h(
    "form",
    { class: "report-form", "aria-label": "SLA report parameters" },
    h("label", {}, h("span", {}, "Series"), match),
    h("label", {}, h("span", {}, "Periods"), periods),
    h("label", {}, h("span", {}, "Objective %"), objective),
    gaps,
    h("button", { type: "submit", class: "primary" }, "Apply"),
    csv,
    csvDowntime,
  );
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const tableCard = card("Availability per target");
  tableCard.el.id = "sla";
  const downCard = card("Downtime");
  downCard.el.id = "downtime";
  root.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "SLA report"), summary), form, h("div", { class: "reports" }, tableCard.el, downCard.el));

  let data: SlaData | null = null;
  let key = "";
  let loadedAt = 0;
  let controller: AbortController | null = null;

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const ps = periods.value.replace(/\s+/g, "");
    update({ match: match.value.trim() === DEFAULT_MATCH ? null : match.value.trim(), periods: ps === DEFAULT_RANGE ? null : ps, objective: objective.value.trim() || null, gaps: gaps.value === "down" ? null : gaps.value });
    void load(true);
  });

  /** The target the URL names (the first one when it names none), or the key no target has. */
  function selected(d: SlaData): { target: Target | null; missing: string | null; period: string } {
    const q = current().params;
    const names = d.periods.map((x) => x.name);
    const period = names.includes(q.get("period") ?? "") ? q.get("period")! : names.includes("month") ? "month" : names[0];
    const targets = d.targets;
    const key = q.get("target");
    if (!key) return { target: targets[0] ?? null, missing: null, period };
    const target = targets.find((t) => t.key === key) ?? null;
    return { target, missing: target ? null : key, period };
  }

  function drawTable(d: SlaData): void {
    const { target: chosen, period } = selected(d);
    const head = h(
      "tr",
      {},
      h("th", { scope: "col" }, "Target"),
      ...d.periods.map((x) => h("th", { scope: "col", class: "num" }, x.name)),
      h("th", { scope: "col" }, `Error budget (${period})`),
      h("th", { scope: "col", class: "num" }, "Downtime"),
    );
    const rows = d.targets.map((t) => {
      const byPeriod = new Map(t.periods.map((r) => [r.period, r]));
      const main = byPeriod.get(period);
      const show = h("button", { type: "button", class: "link", "aria-pressed": t === chosen ? "true" : "false", title: Object.entries(t.labels).map(([k, v]) => `${k}=${v}`).join(", ") }, t.name);
      show.addEventListener("click", () => {
        update({ target: t.key });
        draw();
      });
      return h(
        "tr",
        { "data-target": t.name, "data-key": t.key, class: t === chosen ? "selected" : undefined },
        h("th", { scope: "row" }, show, h("div", { class: "labels" }, ...Object.entries(t.labels).filter(([k]) => k !== "instance").map(([k, v]) => h("code", {}, `${k}=${v}`)))),
        ...d.periods.map((x) => {
          const r = byPeriod.get(x.name);
          const level = r?.met === null || r === undefined ? "" : r.met ? "good" : "crit";
          return h("td", { class: `num avail ${level}`, "data-period": x.name, title: r ? `${r.source}; down ${duration(r.down_seconds)}, no data ${duration(r.no_data_seconds)}` : undefined }, percent(r?.availability ?? null));
        }),
        h("td", { class: "budget-cell" }, main ? budgetBar(main.budget_left, main.budget_left_seconds) : "–"),
        h("td", { class: "num" }, String(main?.downtime_intervals ?? 0)),
      );
    });
    tableCard.body.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "sla" }, h("thead", {}, head), h("tbody", {}, ...rows))));
    setState(tableCard.el, d.targets.length ? "ok" : "empty");
  }

  function drawDowntime(d: SlaData): void {
    const { target, missing, period } = selected(d);
    if (missing !== null) {
      // Never another target in its place: a link must not show what it does not name.
      downCard.el.querySelector("h3")!.textContent = "Downtime";
      downCard.body.replaceChildren(
        h(
          "p",
          { class: "notice warn", id: "sla-target-missing", role: "status" },
          "Target not found: ",
          h("code", {}, missing),
          ` is not among the ${d.targets.length} target${d.targets.length === 1 ? "" : "s"} of this report. Choose one in the table.`,
        ),
      );
      setState(downCard.el, "ok");
      return;
    }
    if (!target) {
      downCard.body.replaceChildren();
      setState(downCard.el, "empty");
      return;
    }
    const choose = h("select", { id: "sla-period", "aria-label": "Period of the downtime list" }, ...d.periods.map((x) => h("option", { value: x.name }, x.name)));
    choose.value = period;
    choose.addEventListener("change", () => {
      update({ period: choose.value });
      draw();
    });
    const list = target.downtime.filter((x) => x.period === period).slice().reverse();
    const table = list.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "downtime" },
            h("thead", {}, h("tr", {}, h("th", {}, "Start"), h("th", {}, "End"), h("th", { class: "num" }, "Duration"), h("th", {}, "Why"))),
            h(
              "tbody",
              {},
              ...list.map((x) =>
                h(
                  "tr",
                  {},
                  h("td", {}, when(x.start)),
                  h("td", {}, when(x.end)),
                  h("td", { class: "num", title: x.down_seconds !== x.duration_seconds ? `down ${duration(x.down_seconds)} of it (rollup bucket)` : undefined }, duration(x.duration_seconds)),
                  h("td", {}, h("span", { class: `badge ${x.reason === "down" ? "crit" : "warn"}` }, x.reason)),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "quiet" }, "No downtime in this period.");
    downCard.el.querySelector("h3")!.textContent = `Downtime of ${target.name}`;
    downCard.body.replaceChildren(h("div", { class: "vars" }, h("label", {}, h("span", {}, "Period"), choose)), table);
    setState(downCard.el, "ok");
  }

  function draw(): void {
    if (!data) return;
    drawTable(data);
    drawDowntime(data);
  }

  async function load(force = false): Promise<void> {
    const params = apiParams();
    const k = JSON.stringify(params);
    if (!force && k === key && Date.now() - loadedAt < RELOAD_MS) return;
    controller?.abort();
    controller = new AbortController();
    const first = k !== key;
    key = k;
    const q = new URLSearchParams(params).toString();
    csv.setAttribute("href", `/api/vigil/sla.csv?${q}`);
    csvDowntime.setAttribute("href", `/api/vigil/sla.csv?${q}&rows=downtime`);
    if (first) {
      setState(tableCard.el, "loading");
      setState(downCard.el, "loading");
    }
    try {
      const d = await slaReport(params, controller.signal);
      data = d;
      loadedAt = Date.now();
      if (!objective.value) objective.placeholder = `${(d.objective * 100).toFixed(3).replace(/\.?0+$/, "")} (config)`;
      summary.textContent = `${d.targets.length} target${d.targets.length === 1 ? "" : "s"}, objective ${percent(d.objective, 3)}, a sample counts up to ${formatValue(d.max_gap_seconds, "s")}; ${d.gaps === "down" ? "gaps count as downtime" : "gaps are left out"}`;
      draw();
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      key = "";
      const message = e instanceof ApiError ? e.message : String(e);
      setState(tableCard.el, "error", message);
      setState(downCard.el, "error", message);
    }
  }

  return {
    refresh: () => load(),
    destroy() {
      controller?.abort();
    },
  };
}

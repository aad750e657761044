// One dashboard panel: a card with a title, a loading/error state and a body
// drawn as a time series, a single stat or a table.
import { ApiError, queryInstant, queryRange, type MatrixSeries, type Panel, type VectorSample } from "./api";
import { TimeChart } from "./chart";
import { formatValue, seriesName } from "./units";
import { autoStep, formatDuration, rateInterval } from "./time";
import { zoomTo } from "./route";

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "class") el.className = String(v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** Substitute $var / ${var} and Grafana's $__rate_interval / $__interval. */
export function interpolate(expr: string, vars: Record<string, string>, step: number): string {
  const all: Record<string, string> = { ...vars, __rate_interval: rateInterval(step), __interval: `${step}s` };
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a, b) => all[a ?? b] ?? m);
}

export type State = "loading" | "ok" | "error" | "empty";

export function setState(card: HTMLElement, state: State, message = ""): void {
  card.dataset.state = state;
  const status = card.querySelector<HTMLElement>(".status")!;
  status.textContent = state === "loading" ? "Loading…" : state === "error" ? message : state === "empty" ? "No data" : "";
  status.setAttribute("role", state === "error" ? "alert" : "status");
}

export function card(title: string, description?: string): { el: HTMLElement; body: HTMLElement } {
  const body = h("div", { class: "body" });
  const el = h(
    "section",
    { class: "card", "data-state": "loading", "aria-label": title },
    h("header", {}, h("h3", { title: description }, title), h("span", { class: "status", role: "status" }, "Loading…")),
    body,
  );
  return { el, body };
}

export class PanelView {
  readonly el: HTMLElement;
  private body: HTMLElement;
  private chart: TimeChart | null = null;
  private seq = 0;

  constructor(readonly panel: Panel) {
    const c = card(panel.title, panel.description);
    this.el = c.el;
    this.body = c.body;
    this.el.style.gridColumn = `span ${Math.min(Math.max(panel.width ?? 6, 2), 12)}`;
    this.el.classList.add(`panel-${panel.type ?? "timeseries"}`);
  }

  /** `compare` (seconds, 0 for none) overlays the same span that long ago, dashed. */
  async refresh(start: number, end: number, vars: Record<string, string>, step?: number, compare = 0): Promise<void> {
    const seq = ++this.seq;
    const st = step ?? autoStep(start, end);
    const type = this.panel.type ?? "timeseries";
    if (this.el.dataset.state !== "ok") setState(this.el, "loading");
    try {
      if (type === "timeseries") {
        const exprs = this.panel.targets.map((t) => interpolate(t.expr, vars, st));
        const [results, earlier] = await Promise.all([
          Promise.all(exprs.map((e) => queryRange(e, start, end, st))),
          compare ? Promise.all(exprs.map((e) => queryRange(e, start - compare, end - compare, st))) : Promise.resolve([]),
        ]);
        if (seq !== this.seq) return;
        const series: MatrixSeries[] = [];
        const names: string[] = [];
        const dashed: boolean[] = [];
        const add = (rs: typeof results, shift: number) =>
          rs.forEach((r, i) => {
            if (r.resultType !== "matrix") return;
            for (const s of r.result) {
              series.push(shift ? { metric: s.metric, values: s.values.map(([t, v]) => [t + shift, v]) } : s);
              const name = seriesName(s.metric, this.panel.targets[i].legend);
              names.push(shift ? `${name} (${formatDuration(shift)} ago)` : name);
              dashed.push(shift > 0);
            }
          });
        add(results, 0);
        add(earlier, compare);
        if (!series.length) return setState(this.el, "empty");
        if (!this.chart) {
          this.chart = new TimeChart(this.body, { unit: this.panel.unit, min: this.panel.min, max: this.panel.max, onZoom: zoomTo });
        }
        this.chart.set(series, names, [start, end], dashed);
      } else {
        const results = await Promise.all(
          this.panel.targets.map((t) => queryInstant(interpolate(t.expr, vars, st), end)),
        );
        if (seq !== this.seq) return;
        const rows: { name: string; value: number; metric: Record<string, string> }[] = [];
        results.forEach((r, i) => {
          if (r.resultType === "vector") {
            for (const s of r.result as VectorSample[]) {
              rows.push({ name: seriesName(s.metric, this.panel.targets[i].legend), value: Number(s.value[1]), metric: s.metric });
            }
          } else if (r.resultType === "scalar") {
            rows.push({ name: this.panel.targets[i].legend ?? "", value: Number(r.result[1]), metric: {} });
          }
        });
        if (!rows.length) return setState(this.el, "empty");
        this.body.replaceChildren(type === "stat" ? this.stat(rows) : this.table(rows));
      }
      setState(this.el, "ok");
    } catch (e) {
      if (seq !== this.seq || (e as Error).name === "AbortError") return;
      setState(this.el, "error", e instanceof ApiError ? e.message : String(e));
    }
  }

  private level(v: number): string {
    const t = this.panel.thresholds;
    if (!t) return "";
    if (t.crit !== undefined && v >= t.crit) return "crit";
    if (t.warn !== undefined && v >= t.warn) return "warn";
    return "good";
  }

  private stat(rows: { name: string; value: number }[]): HTMLElement {
    return h(
      "div",
      { class: "stats" },
      ...rows.slice(0, 12).map((r) =>
        h(
          "div",
          { class: `stat ${this.level(r.value)}` },
          h("div", { class: "stat-value" }, formatValue(r.value, this.panel.unit)),
          rows.length > 1 || this.panel.targets.some((t) => t.legend) ? h("div", { class: "stat-name" }, r.name) : null,
        ),
      ),
    );
  }

  private table(rows: { name: string; value: number }[]): HTMLElement {
    rows.sort((a, b) => b.value - a.value);
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", {}, "Series"), h("th", { class: "num" }, "Value"))),
        h(
          "tbody",
          {},
          ...rows.map((r) =>
            h("tr", { class: this.level(r.value) }, h("td", {}, r.name), h("td", { class: "num" }, formatValue(r.value, this.panel.unit))),
          ),
        ),
      ),
    );
  }

  destroy(): void {
    this.chart?.destroy();
  }
}

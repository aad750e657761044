// Explore: a PromQL input with completion of metric names, label names and
// functions; a graph (range query) and a table (instant query); time range and
// step in the URL so that the address bar is a shareable link.
import { ApiError, labelNames, labelValues, queryInstant, type VectorSample } from "../api";
import type { Ctx, Page } from "../main";
import { PanelView, h, setState, card } from "../panel";
import { current, update } from "../route";
import { autoStep, bounds, parseDuration } from "../time";
import { formatValue, seriesName } from "../units";

const FUNCTIONS = [
  "abs", "absent", "absent_over_time", "avg", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
  "count", "count_over_time", "delta", "deriv", "exp", "floor", "group", "histogram_quantile", "idelta", "increase",
  "irate", "label_join", "label_replace", "last_over_time", "ln", "max", "max_over_time", "min", "min_over_time",
  "predict_linear", "quantile", "quantile_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc", "sqrt",
  "stddev", "stddev_over_time", "sum", "sum_over_time", "time", "timestamp", "topk", "bottomk", "vector",
];
const KEYWORDS = ["by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"];
const STEPS = ["auto", "5s", "10s", "15s", "30s", "1m", "5m", "15m", "1h"];

interface Suggestion { text: string; kind: "metric" | "label" | "function" | "keyword" }

/** What to complete at `pos`: the word before the cursor and whether it is a label position. */
export function context(text: string, pos: number): { word: string; start: number; inLabels: boolean } {
  const before = text.slice(0, pos);
  const m = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(before);
  const word = m ? m[0] : "";
  const start = pos - word.length;
  const open = before.lastIndexOf("{");
  const close = before.lastIndexOf("}");
  let inLabels = open > close;
  // After "by (" / "without (" / "on (" / "ignoring (": label names too.
  if (/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*$/.test(before)) inLabels = true;
  // Inside a label matcher value ("...") nothing is completed.
  if (inLabels && (before.slice(open).match(/"/g)?.length ?? 0) % 2 === 1) return { word: "", start: pos, inLabels };
  return { word, start, inLabels };
}

export function explorePage(root: HTMLElement, ctx: Ctx): Page {
  const p = current().params;
  const input = h("textarea", {
    id: "expr",
    rows: "2",
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "PromQL, e.g. rate(node_cpu_seconds_total[1m])   (Enter runs, Shift+Enter new line, Tab completes)",
    "aria-label": "PromQL expression",
    "aria-autocomplete": "list",
    "aria-controls": "completions",
  });
  input.value = p.get("expr") ?? "";
  const list = h("ul", { id: "completions", role: "listbox", class: "completions", hidden: true });
  const run = h("button", { type: "submit", class: "primary" }, "Run");
  const step = h("select", { id: "step", "aria-label": "Step" }, ...STEPS.map((s) => h("option", { value: s }, s === "auto" ? "Step: auto" : `Step: ${s}`)));
  step.value = STEPS.includes(p.get("step") ?? "") ? p.get("step")! : "auto";
  const tabs = h("div", { role: "tablist", class: "tabs" });
  const tabGraph = h("button", { type: "button", role: "tab", id: "tab-graph" }, "Graph");
  const tabTable = h("button", { type: "button", role: "tab", id: "tab-table" }, "Table");
  tabs.append(tabGraph, tabTable);
  const form = h("form", { class: "explore-form" }, h("div", { class: "expr-wrap" }, input, list), h("div", { class: "explore-controls" }, step, run));
  const out = h("div", { class: "explore-out" });
  root.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Explore")), form, tabs, out);

  let metricNames: string[] = [];
  let labelNameList: string[] = [];
  void labelValues("__name__").then((v) => (metricNames = v)).catch(() => undefined);
  void labelNames().then((v) => (labelNameList = v)).catch(() => undefined);

  let suggestions: Suggestion[] = [];
  let active = 0;

  function suggest(): void {
    const c = context(input.value, input.selectionStart ?? input.value.length);
    if (!c.word && !c.inLabels) return hide();
    const w = c.word.toLowerCase();
    const pool: Suggestion[] = c.inLabels
      ? labelNameList.map((text) => ({ text, kind: "label" as const }))
      : [
          ...metricNames.map((text) => ({ text, kind: "metric" as const })),
          ...FUNCTIONS.map((text) => ({ text, kind: "function" as const })),
          ...KEYWORDS.map((text) => ({ text, kind: "keyword" as const })),
        ];
    const starts = pool.filter((s) => s.text.toLowerCase().startsWith(w));
    const contains = w ? pool.filter((s) => !s.text.toLowerCase().startsWith(w) && s.text.toLowerCase().includes(w)) : [];
    suggestions = [...starts, ...contains].filter((s) => s.text !== c.word).slice(0, 12);
    if (!suggestions.length) return hide();
    active = 0;
    draw();
  }

  function draw(): void {
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    list.replaceChildren(
      ...suggestions.map((s, i) => {
        const li = h("li", { role: "option", id: `completion-${i}`, "aria-selected": i === active ? "true" : "false", class: i === active ? "active" : "" }, h("span", {}, s.text), h("small", {}, s.kind));
        li.addEventListener("mousedown", (e) => {
          e.preventDefault();
          accept(i);
        });
        return li;
      }),
    );
    input.setAttribute("aria-activedescendant", `completion-${active}`);
  }

  function hide(): void {
    list.hidden = true;
    suggestions = [];
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function accept(i: number): void {
    const s = suggestions[i];
    const pos = input.selectionStart ?? input.value.length;
    const c = context(input.value, pos);
    const insert = s.kind === "function" ? `${s.text}(` : s.text;
    input.value = input.value.slice(0, c.start) + insert + input.value.slice(pos);
    const at = c.start + insert.length;
    input.setSelectionRange(at, at);
    hide();
    input.focus();
  }

  input.addEventListener("input", suggest);
  input.addEventListener("blur", () => setTimeout(hide, 100));
  input.addEventListener("keydown", (e) => {
    if (!list.hidden && suggestions.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : suggestions.length - 1)) % suggestions.length;
        return draw();
      }
      if (e.key === "Tab" || (e.key === "Enter" && !e.shiftKey)) {
        e.preventDefault();
        return accept(active);
      }
      if (e.key === "Escape") {
        e.preventDefault();
        return hide();
      }
    }
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  let view: PanelView | null = null;
  let viewExpr = "";
  const tableCard = card("Instant query");

  function tab(): "graph" | "table" {
    return current().params.get("tab") === "table" ? "table" : "graph";
  }

  function drawTabs(): void {
    for (const [b, name] of [[tabGraph, "graph"], [tabTable, "table"]] as const) {
      b.setAttribute("aria-selected", String(tab() === name));
      b.tabIndex = tab() === name ? 0 : -1;
    }
  }
  tabGraph.addEventListener("click", () => {
    update({ tab: null });
    drawTabs();
    void page.refresh();
  });
  tabTable.addEventListener("click", () => {
    update({ tab: "table" });
    drawTabs();
    void page.refresh();
  });
  tabs.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      (tab() === "graph" ? tabTable : tabGraph).click();
      (tab() === "graph" ? tabGraph : tabTable).focus();
    }
  });
  drawTabs();

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    hide();
    update({ expr: input.value.trim(), step: step.value === "auto" ? null : step.value }, true);
    void page.refresh();
  });
  step.addEventListener("change", () => form.requestSubmit());

  async function refreshTable(expr: string, end: number): Promise<void> {
    if (!tableCard.el.isConnected) out.replaceChildren(tableCard.el);
    if (tableCard.el.dataset.state !== "ok") setState(tableCard.el, "loading");
    try {
      const r = await queryInstant(expr, end);
      let rows: [string, string][] = [];
      if (r.resultType === "vector") rows = (r.result as VectorSample[]).map((s) => [seriesName(s.metric), s.value[1]]);
      else if (r.resultType === "matrix") rows = r.result.map((s) => [seriesName(s.metric), s.values.map(([t, v]) => `${v} @${t}`).join("\n")]);
      else rows = [[r.resultType, String(r.result[1])]];
      tableCard.body.replaceChildren(
        rows.length
          ? h(
              "div",
              { class: "table-wrap" },
              h(
                "table",
                { class: "result" },
                h("thead", {}, h("tr", {}, h("th", {}, "Series"), h("th", { class: "num" }, "Value"))),
                h("tbody", {}, ...rows.map(([k, v]) => h("tr", {}, h("td", {}, h("code", {}, k)), h("td", { class: "num", title: formatValue(Number(v)) }, v)))),
              ),
            )
          : h("p", { class: "quiet" }, "Empty result"),
      );
      setState(tableCard.el, "ok");
    } catch (e) {
      setState(tableCard.el, "error", e instanceof ApiError ? e.message : String(e));
    }
  }

  const page: Page = {
    async refresh() {
      const params = current().params;
      const expr = params.get("expr") ?? "";
      if (!expr) {
        out.replaceChildren(h("p", { class: "quiet" }, "Type a PromQL expression and press Enter. Metric and label names complete as you type."));
        viewExpr = "";
        return;
      }
      const [start, end] = bounds(ctx.range());
      if (tab() === "table") return refreshTable(expr, end);
      if (!view || viewExpr !== expr) {
        view?.destroy();
        view = new PanelView({ title: expr, type: "timeseries", width: 12, targets: [{ expr }] });
        viewExpr = expr;
      }
      if (!view.el.isConnected) out.replaceChildren(view.el);
      const s = params.get("step");
      const st = (s && parseDuration(s)) || autoStep(start, end);
      await view.refresh(start, end, {}, Math.max(st, Math.ceil((end - start) / 11000)));
    },
    destroy() {
      view?.destroy();
    },
  };
  return page;
}

// Alerts: the firing and pending alerts (from the alerter's state, /api/v1/alerts)
// with labels and annotations and a "Silence" button that opens the silence form
// prefilled with the alert's labels; below, the history from the database
// (/api/vigil/alerts/history) over the page's time range: a timeline with one lane
// per alert and its firing intervals drawn, and the list of transitions. Filters
// live in the URL (state, filter, hmatch, hstate).
import { ApiError, activeAlerts, alertHistory, type ActiveAlert, type HistoryAlert, type HistoryData, type Labels } from "../api";
import type { Ctx, Page } from "../main";
import { card, h, setState } from "../panel";
import { current, update } from "../route";
import { bounds } from "../time";
import { keepFocus, matches, parseMatcher, silenceLink } from "./silences";

const HISTORY_RELOAD_MS = 15_000;
const LANE_H = 22;
const LABEL_W = 260;
const SVG_NS = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function since(iso: string): string {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function labelText(labels: Labels, skip: string[] = []): string {
  return Object.entries(labels)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k}="${v}"`)
    .join(", ");
}

/** The filter box: matchers such as `severity="critical"` separated by commas, or plain text found in any label. */
function filterFn(text: string): (labels: Labels) => boolean {
  const parts = text.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/).map((p) => p.trim()).filter(Boolean);
  const tests = parts.map((p) => {
    const m = parseMatcher(p);
    if (m) return (l: Labels) => matches(m, l);
    const needle = p.toLowerCase();
    return (l: Labels) => Object.entries(l).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(needle));
  });
  return (l) => tests.every((t) => t(l));
}

function severityClass(labels: Labels, state: string): string {
  if (state === "pending") return "warn";
  return labels.severity === "critical" || labels.severity === "page" ? "crit" : "warn";
}

export function alertsPage(root: HTMLElement, ctx: Ctx): Page {
  const p = current().params;
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const state = h("select", { id: "alert-state", "aria-label": "Alert state" }, h("option", { value: "" }, "Firing and pending"), h("option", { value: "firing" }, "Firing"), h("option", { value: "pending" }, "Pending"));
  state.value = p.get("state") ?? "";
  const filter = h("input", { type: "search", id: "alert-filter", spellcheck: "false", placeholder: 'severity="critical", web-1', value: p.get("filter") ?? "", "aria-label": "Filter alerts by label" });
  const activeCard = card("Active alerts");
  activeCard.el.id = "active-alerts";

  const hmatch = h("input", { type: "text", id: "history-match", spellcheck: "false", placeholder: '{alertname="HostDown"}', value: p.get("hmatch") ?? "", "aria-label": "History: series selector over the alert labels" });
  const hstate = h("select", { id: "history-state", "aria-label": "History: state" }, h("option", { value: "" }, "Any outcome"), h("option", { value: "firing" }, "Still firing"), h("option", { value: "resolved" }, "Resolved"), h("option", { value: "expired" }, "Expired"));
  hstate.value = p.get("hstate") ?? "";
  const hform = h("form", { class: "report-form", "aria-label": "History filters" }, h("label", {}, h("span", {}, "Match"), hmatch), hstate, h("button", { type: "submit", class: "primary" }, "Apply"));
  const timelineCard = card("Timeline");
  timelineCard.el.id = "alert-timeline";
  const eventsCard = card("Transitions");
  eventsCard.el.id = "alert-events";

  root.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Alerts"), summary, h("div", { class: "spacer" }), state, filter),
    activeCard.el,
    h("h2", { class: "section" }, "History"),
    hform,
    timelineCard.el,
    eventsCard.el,
  );

  let alerts: ActiveAlert[] | null = null;
  let history: HistoryData | null = null;
  let historyKey = "";
  let historyAt = 0;
  let controller: AbortController | null = null;
  let historyController: AbortController | null = null;

  state.addEventListener("change", () => {
    update({ state: state.value || null });
    drawActive();
  });
  filter.addEventListener("input", () => {
    update({ filter: filter.value || null });
    drawActive();
  });
  hform.addEventListener("submit", (e) => {
    e.preventDefault();
    update({ hmatch: hmatch.value.trim() || null, hstate: hstate.value || null });
    void loadHistory(true);
  });

  function drawActive(): void {
    if (alerts === null) return;
    const keep = filterFn(filter.value);
    const shown = alerts.filter((a) => (!state.value || a.state === state.value) && keep(a.labels));
    shown.sort((a, b) => (a.state === b.state ? 0 : a.state === "firing" ? -1 : 1) || (a.labels.alertname ?? "").localeCompare(b.labels.alertname ?? "") || labelText(a.labels).localeCompare(labelText(b.labels)));
    const firing = alerts.filter((a) => a.state === "firing").length;
    summary.textContent = `${firing} firing, ${alerts.length - firing} pending`;
    if (!shown.length) {
      activeCard.body.replaceChildren(h("p", { class: "quiet" }, alerts.length ? "No alert matches the filter." : "No alert is firing or pending."));
      setState(activeCard.el, "ok");
      return;
    }
    keepFocus(activeCard.body, () => activeCard.body.replaceChildren(
      h(
        "ul",
        { class: "alerts active-alerts" },
        ...shown.map((a) => {
          const name = a.labels.alertname ?? "alert";
          const { summary: sum, description, ...rest } = a.annotations;
          return h(
            "li",
            { class: `alert ${severityClass(a.labels, a.state)}`, "data-alertname": name, "data-state": a.state },
            h(
              "div",
              { class: "alert-head" },
              h("strong", {}, name),
              h("span", { class: `badge ${a.state === "firing" ? "crit" : "warn"}` }, a.state),
              h("span", { class: "quiet", title: new Date(a.activeAt).toLocaleString() }, `active for ${since(a.activeAt)}`),
              h("span", { class: "quiet" }, `value ${a.value}`),
              h("div", { class: "spacer" }),
              h("a", { class: "button silence", href: silenceLink(a.labels), "aria-label": `Silence ${name} ${labelText(a.labels, ["alertname"])}` }, "Silence"),
            ),
            sum ? h("p", { class: "annotation" }, sum) : null,
            description ? h("p", { class: "annotation quiet" }, description) : null,
            h("div", { class: "labels" }, ...Object.entries(a.labels).filter(([k]) => k !== "alertname").map(([k, v]) => h("code", {}, `${k}="${v}"`))),
            Object.keys(rest).length ? h("div", { class: "labels" }, ...Object.entries(rest).map(([k, v]) => h("code", { class: "annotation-code" }, `${k}: ${v}`))) : null,
          );
        }),
      ),
    ));
    setState(activeCard.el, "ok");
  }

  function drawTimeline(d: HistoryData, start: number, end: number): void {
    if (!d.alerts.length) {
      timelineCard.body.replaceChildren(h("p", { class: "quiet" }, "No alert fired in this time range."));
      setState(timelineCard.el, "ok");
      return;
    }
    const width = Math.max(timelineCard.body.clientWidth || 900, 600);
    const plotW = width - LABEL_W - 8;
    const x = (t: number) => LABEL_W + ((Math.min(Math.max(t, start), end) - start) / (end - start)) * plotW;
    const height = d.alerts.length * LANE_H + 24;
    const chart = svg("svg", { width, height, class: "timeline", role: "img", "aria-label": `Timeline of ${d.alerts.length} alerts` });
    const ticks = 6;
    for (let i = 0; i <= ticks; i++) {
      const t = start + ((end - start) * i) / ticks;
      chart.append(svg("line", { x1: x(t), x2: x(t), y1: 0, y2: height - 18, class: "tl-grid" }));
      chart.append(svg("text", { x: x(t), y: height - 4, class: "tl-tick", "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle" }, new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    }
    d.alerts.forEach((a: HistoryAlert, i: number) => {
      const y = i * LANE_H;
      const name = `${a.labels.alertname ?? "alert"} ${labelText(a.labels, ["alertname"])}`;
      const lane = svg("g", { class: "tl-lane", tabindex: 0, "data-alertname": a.labels.alertname ?? "", "aria-label": `${name}: ${a.intervals.length} firing interval(s)` });
      lane.append(svg("text", { x: 4, y: y + 15, class: "tl-label" }, name.length > 40 ? `${name.slice(0, 39)}…` : name));
      for (const iv of a.intervals) {
        const stop = iv.end ?? end;
        const x0 = x(iv.start);
        const w = Math.max(x(stop) - x0, 2);
        const title = `${a.labels.alertname ?? "alert"}: ${new Date(iv.start * 1000).toLocaleString()} – ${iv.end === null ? "still firing" : `${new Date(iv.end * 1000).toLocaleString()} (${iv.state})`}`;
        lane.append(svg("rect", { x: x0, y: y + 4, width: w, height: LANE_H - 8, rx: 3, class: `tl-bar ${iv.state}` }, svg("title", {}, title)));
      }
      chart.append(lane);
    });
    keepFocus(timelineCard.body, () => timelineCard.body.replaceChildren(
      h("div", { class: "table-wrap" }, chart),
      h("p", { class: "quiet legend" }, h("span", { class: "tl-key firing" }), " firing  ", h("span", { class: "tl-key resolved" }), " resolved  ", h("span", { class: "tl-key expired" }), " expired (no resolve came)", d.truncated ? " — more in this range than shown: narrow the filter or the range" : ""),
    ));
    setState(timelineCard.el, "ok");
  }

  function drawEvents(d: HistoryData): void {
    if (!d.events.length) {
      eventsCard.body.replaceChildren(h("p", { class: "quiet" }, "No transition in this time range."));
      setState(eventsCard.el, "ok");
      return;
    }
    const list = d.events.slice(0, 200);
    eventsCard.body.replaceChildren(
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "events" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Alert"), h("th", { scope: "col" }, "Became"), h("th", { scope: "col" }, "Labels"))),
          h(
            "tbody",
            {},
            ...list.map((e) =>
              h(
                "tr",
                {},
                h("td", { class: "num" }, new Date(e.time * 1000).toLocaleString()),
                h("td", {}, e.labels.alertname ?? ""),
                h("td", {}, h("span", { class: `badge ${e.state === "firing" ? "crit" : e.state === "resolved" ? "good" : "warn"}` }, e.state)),
                h("td", {}, h("div", { class: "labels" }, ...Object.entries(e.labels).filter(([k]) => k !== "alertname").map(([k, v]) => h("code", {}, `${k}="${v}"`)))),
              ),
            ),
          ),
        ),
      ),
      d.events.length > list.length ? h("p", { class: "quiet" }, `${d.events.length - list.length} older transitions not shown.`) : "",
    );
    setState(eventsCard.el, "ok");
  }

  async function loadActive(): Promise<void> {
    controller?.abort();
    controller = new AbortController();
    try {
      alerts = (await activeAlerts(controller.signal)).alerts;
      drawActive();
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      setState(activeCard.el, "error", e instanceof ApiError ? e.message : String(e));
    }
  }

  async function loadHistory(force = false): Promise<void> {
    const [start, end] = bounds(ctx.range());
    const q = current().params;
    const params: Record<string, string | string[]> = { start: String(start), end: String(end) };
    if (q.get("hmatch")) params["match[]"] = [q.get("hmatch")!];
    if (q.get("hstate")) params.state = q.get("hstate")!;
    const key = JSON.stringify({ ...params, start: ctx.range().from, end: ctx.range().to });
    if (!force && key === historyKey && Date.now() - historyAt < HISTORY_RELOAD_MS) return;
    historyController?.abort();
    historyController = new AbortController();
    if (key !== historyKey) {
      setState(timelineCard.el, "loading");
      setState(eventsCard.el, "loading");
    }
    historyKey = key;
    try {
      history = await alertHistory(params, historyController.signal);
      historyAt = Date.now();
      drawTimeline(history, start, end);
      drawEvents(history);
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      historyKey = "";
      const message = e instanceof ApiError ? e.message : String(e);
      setState(timelineCard.el, "error", message);
      setState(eventsCard.el, "error", message);
    }
  }

  return {
    async refresh() {
      await Promise.all([loadActive(), loadHistory()]);
    },
    destroy() {
      controller?.abort();
      historyController?.abort();
    },
  };
}

// Overview: every host with up/down and CPU, memory, disk, network sparklines;
// the firing then pending alerts from the alerter's state (/api/v1/alerts), each
// linking to the Alerts page, and the rows of hosts with a firing alert marked.
// When web has no NATS (/api/v1/alerts answers 503) the alerts come from the
// ALERTS series instead, and a note says so.
import { ApiError, activeAlerts, labelValues, queryInstant, queryRange, type ActiveAlert, type Labels, type MatrixSeries, type VectorSample } from "../api";
import { Sparkline, color } from "../chart";
import type { Ctx, Page } from "../main";
import { card, h, interpolate, setState } from "../panel";
import { href, shared } from "../route";
import { autoStep, bounds } from "../time";
import { formatValue } from "../units";

const FS = 'fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|proc|sysfs|autofs|fuse.*"';

export const METRICS: { key: string; title: string; unit: string; max?: number; expr: string }[] = [
  {
    key: "cpu",
    title: "CPU",
    unit: "percent",
    max: 100,
    expr: '100 * (1 - avg by (host) (rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval])))',
  },
  {
    key: "mem",
    title: "Memory",
    unit: "percent",
    max: 100,
    expr: "100 * (1 - sum by (host) (node_memory_MemAvailable_bytes) / sum by (host) (node_memory_MemTotal_bytes))",
  },
  {
    key: "disk",
    title: "Disk (fullest)",
    unit: "percent",
    max: 100,
    expr: `100 * max by (host) (1 - node_filesystem_avail_bytes{${FS}} / node_filesystem_size_bytes{${FS}})`,
  },
  {
    key: "net",
    title: "Network",
    unit: "Bps",
    expr:
      'sum by (host) (rate(node_network_receive_bytes_total{device!="lo"}[$__rate_interval]) + rate(node_network_transmit_bytes_total{device!="lo"}[$__rate_interval]))',
  },
];

interface Row { tr: HTMLTableRowElement; status: HTMLElement; mark: HTMLAnchorElement; sparks: Record<string, { spark: Sparkline; value: HTMLElement }> }

/** An alert as the box shows it: from /api/v1/alerts, or from an ALERTS sample (no annotations, no activeAt). */
interface ShownAlert { labels: Labels; state: "firing" | "pending"; summary: string; activeAt: string | null }

/** The host an alert is about: its `host` label, else its `instance` without a port. */
export function alertHost(labels: Labels): string | undefined {
  return labels.host ?? labels.instance?.replace(/:\d+$/, "");
}

/** "for 5m", "for 2h 10m", "for 3d 4h": how long an alert has been active. */
export function activeFor(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - new Date(iso).getTime()) / 1000));
  if (s < 60) return `for ${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `for ${m}m`;
  const hrs = Math.floor(m / 60);
  if (hrs < 24) return `for ${hrs}h${m % 60 ? ` ${m % 60}m` : ""}`;
  return `for ${Math.floor(hrs / 24)}d${hrs % 24 ? ` ${hrs % 24}h` : ""}`;
}

function labelList(labels: Labels, skip: string[]): string {
  return Object.entries(labels).filter(([k]) => !skip.includes(k)).map(([k, v]) => `${k}="${v}"`).join(", ");
}

function fromApi(a: ActiveAlert): ShownAlert {
  return { labels: a.labels, state: a.state, summary: a.annotations.summary ?? a.annotations.description ?? "", activeAt: a.activeAt };
}

/** ALERTS is written under the alerter's own `host`, the alert's own host becoming `exported_host`. */
function fromSeries(s: VectorSample): ShownAlert {
  const { __name__, alertstate, host, exported_host, ...labels } = s.metric;
  const who = exported_host ?? host;
  return { labels: who === undefined ? labels : { ...labels, host: who }, state: alertstate === "pending" ? "pending" : "firing", summary: "", activeAt: null };
}

function order(a: ShownAlert, b: ShownAlert): number {
  const sev = (x: ShownAlert) => (x.labels.severity === "critical" || x.labels.severity === "page" ? 0 : 1);
  return (
    (a.state === b.state ? 0 : a.state === "firing" ? -1 : 1) ||
    sev(a) - sev(b) ||
    (a.labels.alertname ?? "").localeCompare(b.labels.alertname ?? "") ||
    labelList(a.labels, []).localeCompare(labelList(b.labels, []))
  );
}

export function overviewPage(root: HTMLElement, ctx: Ctx): Page {
  const hostsCard = card("Hosts");
  const alertsCard = card("Alerts");
  hostsCard.el.id = "hosts";
  alertsCard.el.id = "alerts";
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const overview = h("div", { class: "overview", id: "overview" }, hostsCard.el, alertsCard.el);
  root.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Overview"), summary), overview);

  const tbody = h("tbody");
  hostsCard.body.append(
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "hosts" },
        h(
          "thead",
          {},
          h("tr", {}, h("th", {}, "Host"), h("th", {}, "Status"), ...METRICS.map((m) => h("th", { colspan: "2" }, m.title))),
        ),
        tbody,
      ),
    ),
  );
  const rows = new Map<string, Row>();

  function row(host: string): Row {
    let r = rows.get(host);
    if (r) return r;
    const status = h("span", { class: "badge" });
    const mark = h("a", { class: "badge crit host-alerts", hidden: true });
    const link = h("a", { href: href("/d/host-detail", { ...shared(), "var-host": host }), title: `Host detail of ${host}` }, host);
    const tr = h("tr", { "data-host": host }, h("th", { scope: "row" }, link), h("td", {}, status, " ", mark));
    const sparks: Row["sparks"] = {};
    METRICS.forEach((m, i) => {
      const cell = h("td", { class: "spark" });
      const value = h("td", { class: "num" }, "–");
      tr.append(cell, value);
      sparks[m.key] = { spark: new Sparkline(cell, color(i), m.max), value };
    });
    r = { tr, status, mark, sparks };
    rows.set(host, r);
    return r;
  }

  async function refreshHosts(start: number, end: number): Promise<void> {
    const step = autoStep(start, end, 60);
    const [known, upNow, targetsDown, ...series] = await Promise.all([
      labelValues("host", ["node_uname_info", "up"], start, end),
      queryInstant("group by (host) (node_uname_info)", end),
      queryInstant("count by (host) (up == 0)", end),
      ...METRICS.map((m) => queryRange(interpolate(m.expr, {}, step), start, end, step)),
    ]);
    const up = new Set((upNow.result as VectorSample[]).map((s) => s.metric.host));
    const down = new Map((targetsDown.result as VectorSample[]).map((s) => [s.metric.host, Number(s.value[1])]));
    const hosts = [...new Set([...known, ...up])].sort();
    for (const host of hosts) {
      const r = row(host);
      const isUp = up.has(host);
      const bad = down.get(host) ?? 0;
      r.status.className = `badge ${isUp ? (bad ? "warn" : "good") : "crit"}`;
      r.status.textContent = isUp ? (bad ? `up · ${bad} target${bad > 1 ? "s" : ""} down` : "up") : "down";
      r.tr.dataset.status = isUp ? "up" : "down";
    }
    METRICS.forEach((m, i) => {
      const res = series[i];
      const byHost = new Map<string, MatrixSeries>();
      if (res.resultType === "matrix") for (const s of res.result) byHost.set(s.metric.host ?? "", s);
      for (const host of hosts) {
        const cell = row(host).sparks[m.key];
        const s = byHost.get(host);
        cell.spark.set(s?.values ?? [], [start, end]);
        const last = s?.values[s.values.length - 1];
        cell.value.textContent = last ? formatValue(Number(last[1]), m.unit) : "–";
      }
    });
    tbody.replaceChildren(...hosts.map((host) => row(host).tr));
    const nDown = hosts.filter((x) => !up.has(x)).length;
    summary.textContent = `${hosts.length} host${hosts.length === 1 ? "" : "s"}, ${nDown} down`;
    setState(hostsCard.el, hosts.length ? "ok" : "empty");
  }

  /** Hosts with firing alerts, by host: how many (from the last alerts load). */
  let firingByHost = new Map<string, number>();

  async function loadAlerts(end: number): Promise<{ alerts: ShownAlert[]; fallback: string | null }> {
    try {
      return { alerts: (await activeAlerts()).alerts.map(fromApi), fallback: null };
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 503) throw e;
      const res = await queryInstant('ALERTS{alertstate="firing"}', end);
      return { alerts: (res.result as VectorSample[]).map(fromSeries), fallback: e.message };
    }
  }

  async function refreshAlerts(end: number): Promise<void> {
    const { alerts, fallback } = await loadAlerts(end);
    alerts.sort(order);
    firingByHost = new Map();
    for (const a of alerts) {
      const host = alertHost(a.labels);
      if (a.state === "firing" && host !== undefined) firingByHost.set(host, (firingByHost.get(host) ?? 0) + 1);
    }
    const note = fallback
      ? h("p", { class: "quiet note", id: "alerts-fallback", title: fallback }, "The alerter's state is unavailable (web has no NATS): firing alerts read from the ALERTS series instead.")
      : null;
    if (!alerts.length) {
      alertsCard.body.replaceChildren(h("p", { class: "quiet" }, fallback ? "No alert is firing." : "No alert is firing or pending."), ...(note ? [note] : []));
    } else {
      alertsCard.body.replaceChildren(
        h(
          "ul",
          { class: "alerts" },
          ...alerts.map((a) => {
            const { alertname, severity } = a.labels;
            const name = alertname ?? "alert";
            const crit = a.state === "firing" && (severity === "critical" || severity === "page");
            const filter = labelList(a.labels, ["severity"]);
            return h(
              "li",
              { class: `alert ${a.state === "pending" ? "pending" : crit ? "crit" : "warn"}`, "data-alertname": name, "data-state": a.state },
              h(
                "div",
                { class: "alert-head" },
                h("a", { class: "alert-name", href: href("/alerts", { ...shared(), filter }), title: `${name} on the Alerts page` }, name),
                h("span", { class: `badge ${a.state === "pending" ? "warn" : crit ? "crit" : "warn"}` }, a.state === "pending" ? "pending" : severity ?? "firing"),
                a.activeAt ? h("span", { class: "quiet since", title: `active since ${new Date(a.activeAt).toLocaleString()}` }, activeFor(a.activeAt)) : null,
              ),
              a.summary ? h("p", { class: "annotation" }, a.summary) : null,
              h("div", { class: "labels" }, ...Object.entries(a.labels).filter(([k]) => k !== "alertname").map(([k, v]) => h("code", {}, `${k}=${v}`))),
            );
          }),
        ),
        ...(note ? [note] : []),
      );
    }
    setState(alertsCard.el, "ok");
  }

  /** Mark the rows of hosts with a firing alert (after both hosts and alerts have loaded). */
  function markHosts(): void {
    for (const [host, r] of rows) {
      const n = firingByHost.get(host) ?? 0;
      r.tr.classList.toggle("alerting", n > 0);
      if (n) {
        r.tr.dataset.alerts = String(n);
        r.mark.hidden = false;
        r.mark.textContent = `${n} firing`;
        r.mark.href = href("/alerts", { ...shared(), filter: host });
        r.mark.title = `${n} firing alert${n > 1 ? "s" : ""} on ${host}`;
      } else {
        delete r.tr.dataset.alerts;
        r.mark.hidden = true;
      }
    }
  }

  let ready = false;

  return {
    async refresh() {
      const [start, end] = bounds(ctx.range());
      await Promise.all([
        refreshHosts(start, end).catch((e) => setState(hostsCard.el, "error", e instanceof ApiError ? e.message : String(e))),
        refreshAlerts(end).catch((e) => setState(alertsCard.el, "error", e instanceof ApiError ? e.message : String(e))),
      ]);
      markHosts();
      // Wait for the frame that paints the rows and sparklines just drawn.
      await new Promise<void>((r) => requestAnimationFrame(() => r()));
      const failed = [hostsCard.el, alertsCard.el].some((c) => c.dataset.state === "error");
      // A deterministic "rendered" signal for tests and tests/benchmarks/bench_ui.py:
      // data-ready on #overview, and the performance mark "vigil:overview-ready" the first time.
      overview.dataset.ready = failed ? "error" : "true";
      if (!ready && !failed) {
        ready = true;
        performance.mark("vigil:overview-ready");
      }
    },
    destroy() {
      for (const r of rows.values()) for (const s of Object.values(r.sparks)) s.spark.destroy();
    },
  };
}

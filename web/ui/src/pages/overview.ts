// Overview: every host with up/down and CPU, memory, disk, network sparklines;
// firing alerts from ALERTS{alertstate="firing"} until an alerts API exists.
import { ApiError, labelValues, queryInstant, queryRange, type MatrixSeries, type VectorSample } from "../api";
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

interface Row { tr: HTMLTableRowElement; status: HTMLElement; sparks: Record<string, { spark: Sparkline; value: HTMLElement }> }

export function overviewPage(root: HTMLElement, ctx: Ctx): Page {
  const hostsCard = card("Hosts");
  const alertsCard = card("Firing alerts");
  hostsCard.el.id = "hosts";
  alertsCard.el.id = "alerts";
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  root.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Overview"), summary), h("div", { class: "overview" }, hostsCard.el, alertsCard.el));

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
    const link = h("a", { href: href("/d/host-detail", { ...shared(), "var-host": host }), title: `Host detail of ${host}` }, host);
    const tr = h("tr", { "data-host": host }, h("th", { scope: "row" }, link), h("td", {}, status));
    const sparks: Row["sparks"] = {};
    METRICS.forEach((m, i) => {
      const cell = h("td", { class: "spark" });
      const value = h("td", { class: "num" }, "–");
      tr.append(cell, value);
      sparks[m.key] = { spark: new Sparkline(cell, color(i), m.max), value };
    });
    r = { tr, status, sparks };
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

  async function refreshAlerts(end: number): Promise<void> {
    const res = await queryInstant('ALERTS{alertstate="firing"}', end);
    const alerts = (res.result as VectorSample[]).slice().sort((a, b) => (a.metric.alertname ?? "").localeCompare(b.metric.alertname ?? ""));
    if (!alerts.length) {
      alertsCard.body.replaceChildren(h("p", { class: "quiet" }, "No alert is firing."));
    } else {
      alertsCard.body.replaceChildren(
        h(
          "ul",
          { class: "alerts" },
          ...alerts.map((a) => {
            const { __name__, alertname, alertstate, severity, ...labels } = a.metric;
            return h(
              "li",
              { class: `alert ${severity === "critical" ? "crit" : "warn"}` },
              h("strong", {}, alertname ?? "alert"),
              severity ? h("span", { class: `badge ${severity === "critical" ? "crit" : "warn"}` }, severity) : null,
              h("div", { class: "labels" }, ...Object.entries(labels).map(([k, v]) => h("code", {}, `${k}=${v}`))),
            );
          }),
        ),
      );
    }
    setState(alertsCard.el, "ok");
  }

  return {
    async refresh() {
      const [start, end] = bounds(ctx.range());
      await Promise.all([
        refreshHosts(start, end).catch((e) => setState(hostsCard.el, "error", e instanceof ApiError ? e.message : String(e))),
        refreshAlerts(end).catch((e) => setState(alertsCard.el, "error", e instanceof ApiError ? e.message : String(e))),
      ]);
    },
    destroy() {
      for (const r of rows.values()) for (const s of Object.values(r.sparks)) s.spark.destroy();
    },
  };
}

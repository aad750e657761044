// The Prometheus HTTP API and Vigil's own UI endpoints, as typed fetches.

export type Labels = Record<string, string>;
export interface MatrixSeries { metric: Labels; values: [number, string][] }
export interface VectorSample { metric: Labels; value: [number, string] }
export type QueryData =
  | { resultType: "matrix"; result: MatrixSeries[] }
  | { resultType: "vector"; result: VectorSample[] }
  | { resultType: "scalar" | "string"; result: [number, string] };

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

async function get<T>(path: string, params: Record<string, string | string[]> = {}, signal?: AbortSignal): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, item);
  }
  const url = q.toString() ? `${path}?${q}` : path;
  let r: Response;
  try {
    r = await fetch(url, { signal, headers: { Accept: "application/json" } });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(`cannot reach Vigil: ${(e as Error).message}`, 0);
  }
  let body: any;
  try {
    body = await r.json();
  } catch {
    throw new ApiError(`cannot read ${path}: HTTP ${r.status} without a JSON body`, r.status);
  }
  if (!r.ok || body.status === "error") {
    throw new ApiError(body.error ?? `HTTP ${r.status}`, r.status);
  }
  return (body.data ?? body) as T;
}

export function queryRange(expr: string, start: number, end: number, step: number, signal?: AbortSignal): Promise<QueryData> {
  return get<QueryData>("/api/v1/query_range", { query: expr, start: String(start), end: String(end), step: String(step) }, signal);
}

export function queryInstant(expr: string, time: number, signal?: AbortSignal): Promise<QueryData> {
  return get<QueryData>("/api/v1/query", { query: expr, time: String(time) }, signal);
}

export function labelValues(name: string, match: string[] = [], start?: number, end?: number): Promise<string[]> {
  const p: Record<string, string | string[]> = {};
  if (match.length) p["match[]"] = match;
  if (start !== undefined) p.start = String(Math.floor(start));
  if (end !== undefined) p.end = String(Math.ceil(end));
  return get<string[]>(`/api/v1/label/${encodeURIComponent(name)}/values`, p);
}

export function labelNames(match: string[] = []): Promise<string[]> {
  return get<string[]>("/api/v1/labels", match.length ? { "match[]": match } : {});
}

export interface Variable {
  name: string;
  label?: string;
  /** The label whose values fill the drop-down. */
  values_of: string;
  /** Series selectors restricting the values (match[]). */
  match?: string[];
  include_all?: boolean;
  default?: string;
}

export interface Target { expr: string; legend?: string }

export interface Panel {
  title: string;
  type?: "timeseries" | "stat" | "table";
  unit?: string;
  width?: number;
  description?: string;
  targets: Target[];
  thresholds?: { warn?: number; crit?: number };
  min?: number;
  max?: number;
}

export interface Dashboard {
  id: string;
  title: string;
  description?: string;
  tags?: string[];
  source?: string;
  variables?: Variable[];
  panels: Panel[];
}

export interface Settings { refresh_interval: number; default_range: number }

export interface DashboardList { settings: Settings; dashboards: Dashboard[]; errors: { source: string; error: string }[] }

let dashboardsCache: Promise<DashboardList> | null = null;

export function dashboards(): Promise<DashboardList> {
  if (!dashboardsCache) {
    dashboardsCache = get<DashboardList>("/api/vigil/dashboards").catch((e) => {
      dashboardsCache = null;
      throw e;
    });
  }
  return dashboardsCache;
}

// Reports (web/reports): SLA and capacity planning. Times in epoch seconds.
export interface SlaPeriodRow {
  period: string; start: number; end: number; source: string;
  availability: number | null; objective: number; met: boolean | null;
  up_seconds: number; down_seconds: number; no_data_seconds: number; unmonitored_seconds: number;
  budget_seconds: number; budget_left_seconds: number; budget_left: number | null; downtime_intervals: number;
}
export interface SlaDowntime { period: string; start: number; end: number; duration_seconds: number; down_seconds: number; reason: string }
export interface SlaTarget {
  /** The metric and its labels sorted by name: the target's identity in URLs. */
  key: string; name: string; metric: string; labels: Labels; periods: SlaPeriodRow[]; downtime: SlaDowntime[];
}
export interface SlaData {
  objective: number; max_gap_seconds: number; gaps: "down" | "ignore";
  periods: { name: string; start: number; end: number }[]; targets: SlaTarget[];
}

export function slaReport(params: Record<string, string>, signal?: AbortSignal): Promise<SlaData> {
  return get<SlaData>("/api/vigil/sla", params, signal);
}

export interface CapacityItem {
  kind: "filesystem" | "memory"; labels: Labels; size_bytes: number | null; available_bytes: number | null;
  used_ratio: number | null; status: "full" | "filling" | "never" | "unknown" | "stale"; full_at: number | null;
  days_left: number | null; growth_bytes_per_day: number | null; source: string; history: [number, number][];
  /** Newest sample's time (epoch seconds). */
  last_seen: number;
}
export interface CapacityData {
  now: number; lookback_seconds: number; items: CapacityItem[];
  /** Series whose newest sample is older than stale_after_seconds: not projected. */
  stale: CapacityItem[]; stale_after_seconds: number;
}

export function capacityReport(params: Record<string, string>, signal?: AbortSignal): Promise<CapacityData> {
  return get<CapacityData>("/api/vigil/capacity", params, signal);
}

// Alerting (web/alerting.py): Prometheus' alerts, Vigil's alert history, Alertmanager v2 silences.
export interface ActiveAlert { labels: Labels; annotations: Labels; state: "pending" | "firing"; activeAt: string; value: string; keepFiringSince?: string }

export function activeAlerts(signal?: AbortSignal): Promise<{ alerts: ActiveAlert[] }> {
  return get<{ alerts: ActiveAlert[] }>("/api/v1/alerts", {}, signal);
}

export interface HistoryInterval { start: number; end: number | null; state: "firing" | "resolved" | "expired" }
export interface HistoryAlert { fingerprint: string; labels: Labels; annotations: Labels; intervals: HistoryInterval[] }
export interface HistoryEvent { fingerprint: string; labels: Labels; time: number; state: "firing" | "resolved" | "expired" }
export interface HistoryData { alerts: HistoryAlert[]; events: HistoryEvent[]; truncated: boolean }

export function alertHistory(params: Record<string, string | string[]>, signal?: AbortSignal): Promise<HistoryData> {
  return get<HistoryData>("/api/vigil/alerts/history", params, signal);
}

export interface SilenceMatcher { name: string; value: string; isRegex: boolean; isEqual: boolean }
export interface Silence {
  id: string; matchers: SilenceMatcher[]; startsAt: string; endsAt: string; updatedAt: string;
  createdBy: string; comment: string; status: { state: "active" | "pending" | "expired" };
}
export interface PostableSilence { id?: string; matchers: SilenceMatcher[]; startsAt: string; endsAt: string; createdBy: string; comment: string }

/** Alertmanager API v2: plain JSON bodies, errors as a JSON string. */
async function amRequest<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let r: Response;
  try {
    r = await fetch(path, {
      method, signal,
      headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(`cannot reach Vigil: ${(e as Error).message}`, 0);
  }
  const text = await r.text();
  let parsed: any = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (!r.ok) {
    const message = typeof parsed === "string" ? parsed : parsed?.error ?? `HTTP ${r.status}`;
    throw new ApiError(message, r.status);
  }
  return parsed as T;
}

export function listSilences(signal?: AbortSignal): Promise<Silence[]> {
  return amRequest<Silence[]>("GET", "/api/v2/silences", undefined, signal);
}

export function createSilence(s: PostableSilence): Promise<{ silenceID: string }> {
  return amRequest<{ silenceID: string }>("POST", "/api/v2/silences", s);
}

export function expireSilence(id: string): Promise<null> {
  return amRequest<null>("DELETE", `/api/v2/silence/${encodeURIComponent(id)}`);
}

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

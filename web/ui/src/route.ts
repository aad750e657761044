// Hash routes ("#/explore?expr=..."): every page state lives in the URL so that
// a link reproduces the view. Changing state replaces the entry (no history spam);
// navigating between pages pushes one.

export interface Route { path: string; params: URLSearchParams }

export function current(): Route {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?", 2);
  return { path: path || "/", params: new URLSearchParams(query) };
}

export function href(path: string, params?: URLSearchParams | Record<string, string>): string {
  const p = params instanceof URLSearchParams ? params : new URLSearchParams(params ?? {});
  const q = p.toString();
  return `#${path}${q ? `?${q}` : ""}`;
}

/** Update some parameters of the current route without reloading the page. */
export function update(changes: Record<string, string | null>, push = false): void {
  const r = current();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === "") r.params.delete(k);
    else r.params.set(k, v);
  }
  const url = href(r.path, r.params);
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

/** Parameters that travel with every link: the time range. */
export function shared(): Record<string, string> {
  const p = current().params;
  const out: Record<string, string> = {};
  for (const k of ["from", "to"]) {
    const v = p.get(k);
    if (v) out[k] = v;
  }
  return out;
}

/** Zoom every view to an absolute range: a new history entry, so Back zooms out. */
export function zoomTo(from: number, to: number): void {
  update({ from: String(Math.floor(from * 1000)), to: String(Math.ceil(to * 1000)) }, true);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

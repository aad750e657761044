// Dashboards defined as data (web/dashboards/*.yaml and the visualization.dashboards
// globs): the list, and one dashboard with its template variables as drop-downs
// whose values live in the URL (var-<name>=...).
import { ApiError, dashboards, labelValues, type Dashboard, type Variable } from "../api";
import type { Ctx, Page } from "../main";
import { PanelView, h } from "../panel";
import { current, href, shared, update } from "../route";
import { bounds, parseDuration } from "../time";

const ALL = "$__all";

export function dashboardListPage(root: HTMLElement, _ctx: Ctx): Page {
  root.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Dashboards")), h("p", { class: "status", role: "status" }, "Loading…"));
  let drawn = false;
  return {
    async refresh() {
      if (drawn) return;
      try {
        const list = await dashboards();
        drawn = true;
        root.replaceChildren(
          h("div", { class: "page-head" }, h("h1", {}, "Dashboards"), h("p", { class: "summary" }, `${list.dashboards.length} dashboards`)),
          ...list.errors.map((e) => h("div", { class: "notice error", role: "alert" }, `cannot load ${e.source}: ${e.error}`)),
          h(
            "ul",
            { class: "dash-list" },
            ...list.dashboards.map((d) =>
              h(
                "li",
                {},
                h("a", { href: href(`/d/${d.id}`, shared()) }, d.title),
                d.description ? h("p", {}, d.description) : null,
                h("div", { class: "tags" }, ...(d.tags ?? []).map((t) => h("span", { class: "tag" }, t)), d.source && d.source !== "built-in" ? h("span", { class: "tag user" }, "user") : null),
              ),
            ),
          ),
        );
      } catch (e) {
        root.replaceChildren(h("div", { class: "notice error", role: "alert" }, `cannot load dashboards: ${e instanceof ApiError ? e.message : e}`));
      }
    },
    destroy() {},
  };
}

export function dashboardPage(root: HTMLElement, ctx: Ctx, id: string): Page {
  let dash: Dashboard | null = null;
  let panels: PanelView[] = [];
  let grid: HTMLElement | null = null;
  const selects = new Map<string, HTMLSelectElement>();
  const options = new Map<string, string>();
  root.replaceChildren(h("p", { class: "status", role: "status" }, "Loading…"));

  function values(): Record<string, string> {
    const p = current().params;
    const out: Record<string, string> = {};
    for (const v of dash?.variables ?? []) {
      const chosen = p.get(`var-${v.name}`) ?? selects.get(v.name)?.value ?? ALL;
      out[v.name] = chosen === ALL ? ".*" : escapeRegex(chosen);
    }
    return out;
  }

  async function fill(v: Variable, start: number, end: number): Promise<void> {
    const sel = selects.get(v.name)!;
    const found = await labelValues(v.values_of, v.match ?? [], start, end);
    const key = found.join("\u0000");
    if (options.get(v.name) === key) return;
    options.set(v.name, key);
    const wanted = current().params.get(`var-${v.name}`) ?? v.default ?? (v.include_all ? ALL : found[0] ?? "");
    const opts = [...(v.include_all ? [h("option", { value: ALL }, "All")] : []), ...found.map((x) => h("option", { value: x }, x))];
    if (wanted && wanted !== ALL && !found.includes(wanted)) opts.push(h("option", { value: wanted }, `${wanted} (no data)`));
    sel.replaceChildren(...opts);
    sel.value = wanted;
    if (!current().params.get(`var-${v.name}`) && wanted) update({ [`var-${v.name}`]: wanted });
  }

  function build(d: Dashboard): void {
    const bar = h("div", { class: "vars", role: "group", "aria-label": "Template variables" });
    const compare = h(
      "select",
      { id: "compare", "aria-label": "Compare with an earlier period" },
      ...compareChoices(current().params.get("compare") ?? "").map(([v, label]) =>
        h("option", { value: v, selected: (current().params.get("compare") ?? "") === v }, label),
      ),
    );
    compare.addEventListener("change", () => {
      update({ compare: compare.value || null }, true);
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    });
    for (const v of d.variables ?? []) {
      const sel = h("select", { id: `var-${v.name}`, name: v.name });
      sel.addEventListener("change", () => {
        update({ [`var-${v.name}`]: sel.value }, true);
        window.dispatchEvent(new HashChangeEvent("hashchange"));
      });
      selects.set(v.name, sel);
      bar.append(h("label", {}, h("span", {}, v.label ?? v.name), sel));
    }
    bar.append(h("label", {}, compare));
    panels = d.panels.map((p) => new PanelView(p));
    grid = h("div", { class: "grid" }, ...panels.map((p) => p.el));
    root.replaceChildren(
      h("div", { class: "page-head" }, h("h1", {}, d.title), d.description ? h("p", { class: "summary" }, d.description) : null),
      bar,
      grid,
    );
  }

  return {
    async refresh() {
      if (!dash) {
        try {
          const list = await dashboards();
          const found = list.dashboards.find((d) => d.id === id);
          if (!found) {
            root.replaceChildren(h("div", { class: "notice error", role: "alert" }, `No dashboard "${id}". `, h("a", { href: "#/dashboards" }, "See all dashboards")));
            return;
          }
          dash = found;
          build(found);
        } catch (e) {
          root.replaceChildren(h("div", { class: "notice error", role: "alert" }, `cannot load dashboards: ${e instanceof ApiError ? e.message : e}`));
          return;
        }
      }
      const [start, end] = bounds(ctx.range());
      await Promise.all((dash.variables ?? []).map((v) => fill(v, start, end).catch(() => undefined)));
      const vars = values();
      const compare = parseDuration(current().params.get("compare") ?? "") ?? 0;
      await Promise.all(panels.map((p) => p.refresh(start, end, vars, undefined, compare)));
      // The "rendered" signal tests and tests/benchmarks/bench_ui.py wait for: every
      // panel's queries answered and its chart drawn (or its error shown).
      if (grid) grid.dataset.ready = panels.some((p) => p.el.dataset.state === "error") ? "error" : "true";
    },
    destroy() {
      for (const p of panels) p.destroy();
    },
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\\\$&");
}

function compareChoices(chosen: string): string[][] {
  const choices = [["", "No comparison"], ["1d", "Compare: day before"], ["1w", "Compare: week before"]];
  if (chosen && !choices.some(([v]) => v === chosen)) choices.push([chosen, `Compare: ${chosen} before`]);
  return choices;
}

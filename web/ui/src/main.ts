// The shell: navigation, time range picker, live toggle, theme; pages below it.
// Each page is an object with refresh() and destroy(); a single ticker calls
// refresh() every refresh_interval while the tab is visible, never overlapping.
import "./style.css";
import { dashboards, type Settings } from "./api";
import { h } from "./panel";
import { current, href, shared, update } from "./route";
import { PRESETS, describe, type Range } from "./time";
import { overviewPage } from "./pages/overview";
import { dashboardListPage, dashboardPage } from "./pages/dashboards";
import { explorePage } from "./pages/explore";
import { slaPage } from "./pages/sla";
import { capacityPage } from "./pages/capacity";
import { alertsPage } from "./pages/alerts";
import { silencesPage } from "./pages/silences";

export interface Page {
  refresh(): Promise<void>;
  destroy(): void;
}

export interface Ctx {
  settings: Settings;
  range(): Range;
}

const DEFAULT_SETTINGS: Settings = { refresh_interval: 2, default_range: 3600 };

function defaultFrom(settings: Settings): string {
  const s = settings.default_range;
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (s % n === 0) return `now-${s / n}${u}`;
  }
  return `now-${s}s`;
}

function route(path: string, root: HTMLElement, ctx: Ctx): Page {
  if (path === "/" || path === "/overview") return overviewPage(root, ctx);
  if (path === "/dashboards") return dashboardListPage(root, ctx);
  const d = /^\/d\/([\w-]+)$/.exec(path);
  if (d) return dashboardPage(root, ctx, d[1]);
  if (path === "/explore") return explorePage(root, ctx);
  if (path === "/sla") return slaPage(root, ctx);
  if (path === "/capacity") return capacityPage(root, ctx);
  if (path === "/alerts") return alertsPage(root, ctx);
  if (path === "/silences") return silencesPage(root, ctx);
  root.replaceChildren(h("div", { class: "notice error", role: "alert" }, `No page at ${path}. `, h("a", { href: "#/" }, "Go to the overview")));
  return { refresh: async () => {}, destroy: () => {} };
}

function themeToggle(): HTMLButtonElement {
  const label = () => (document.documentElement.dataset.theme === "dark" ? "Light theme" : "Dark theme");
  const b = h("button", { type: "button", class: "ghost", id: "theme" }, label());
  b.addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("vigil.theme", next);
    b.textContent = label();
    window.dispatchEvent(new Event("vigil-theme"));
  });
  return b;
}

async function boot(): Promise<void> {
  const app = document.getElementById("app")!;
  let settings = DEFAULT_SETTINGS;
  try {
    settings = (await dashboards()).settings;
  } catch {
    // The dashboards endpoint reports its own error on the Dashboards page.
  }
  const ctx: Ctx = {
    settings,
    range: () => {
      const p = current().params;
      return { from: p.get("from") || defaultFrom(settings), to: p.get("to") || "now" };
    },
  };

  const nav = h("nav", { "aria-label": "Main" });
  const links: [string, string, RegExp][] = [
    ["/", "Overview", /^\/(overview)?$/],
    ["/dashboards", "Dashboards", /^\/(dashboards|d\/.*)$/],
    ["/explore", "Explore", /^\/explore$/],
    ["/sla", "SLA", /^\/sla$/],
    ["/capacity", "Capacity", /^\/capacity$/],
    ["/alerts", "Alerts", /^\/alerts$/],
    ["/silences", "Silences", /^\/silences$/],
  ];
  const rangeSelect = h("select", { id: "range", "aria-label": "Time range" });
  const live = h("input", { type: "checkbox", id: "live", checked: true });
  const liveLabel = h("label", { class: "live", for: "live", title: `Refresh every ${settings.refresh_interval} s` }, live, " Live");
  const main = h("main", { id: "main", tabindex: "-1" });
  app.replaceChildren(
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    h("header", { class: "top" }, h("a", { class: "brand", href: "#/" }, "Vigil"), nav, h("div", { class: "spacer" }), rangeSelect, liveLabel, themeToggle()),
    main,
  );
  // The skip link must not change the route.
  app.querySelector(".skip")!.addEventListener("click", (e) => {
    e.preventDefault();
    main.focus();
  });

  function drawNav(): void {
    const path = current().path;
    nav.replaceChildren(
      ...links.map(([p, label, re]) => h("a", { href: href(p, shared()), "aria-current": re.test(path) ? "page" : undefined }, label)),
    );
  }

  function drawRange(): void {
    // The SLA and capacity reports have their own windows (periods, lookback) that one
    // range cannot express: a picker there would change nothing, so it is not shown.
    rangeSelect.hidden = /^\/(sla|capacity)$/.test(current().path);
    const r = ctx.range();
    const options = PRESETS.map(([from, label]) => h("option", { value: from, selected: r.to === "now" && r.from === from }, label));
    if (!(r.to === "now" && PRESETS.some(([f]) => f === r.from))) {
      options.unshift(h("option", { value: "", selected: true }, describe(r)));
    }
    rangeSelect.replaceChildren(...options);
  }

  rangeSelect.addEventListener("change", () => {
    if (!rangeSelect.value) return;
    update({ from: rangeSelect.value, to: null });
    drawNav();
    void tick(true);
  });

  let page: Page | null = null;
  let path = "";
  let busy = false;

  async function tick(force = false): Promise<void> {
    if (!page || busy || (!force && (document.hidden || !live.checked))) return;
    busy = true;
    try {
      await page.refresh();
    } finally {
      busy = false;
    }
  }

  function onRoute(): void {
    const r = current();
    drawNav();
    drawRange();
    if (r.path !== path || !page) {
      page?.destroy();
      path = r.path;
      main.replaceChildren();
      page = route(r.path, main, ctx);
    }
    busy = false;
    void tick(true);
  }

  window.addEventListener("hashchange", onRoute);
  window.addEventListener("vigil-theme", () => {
    // Charts read their colours at creation: build the page again.
    path = "";
    onRoute();
  });
  setInterval(() => void tick(), Math.max(settings.refresh_interval, 1) * 1000);
  onRoute();
}

void boot();

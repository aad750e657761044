// Silences: the list (active, pending, expired) with an Expire button, and a form
// to create one with matchers (=, !=, =~, !~), a start and an end or duration,
// creator and comment, previewing the alerts the matchers catch (matched here
// against /api/v1/alerts the way Alertmanager matches). The form's fields and the
// list's filter live in the URL, so "Silence" on the Alerts page is a link.
import { ApiError, activeAlerts, createSilence, expireSilence, listSilences, type ActiveAlert, type Labels, type Silence, type SilenceMatcher } from "../api";
import type { Ctx, Page } from "../main";
import { card, h, setState } from "../panel";
import { current, href, update } from "../route";
import { parseDuration } from "../time";

export type Op = "=" | "!=" | "=~" | "!~";
export const OPS: Op[] = ["=", "!=", "=~", "!~"];
const STATES = ["active", "pending", "expired"] as const;
const DEFAULT_DURATION = "2h";

export interface MatcherRow { name: string; op: Op; value: string }

export function toApi(m: MatcherRow): SilenceMatcher {
  return { name: m.name, value: m.value, isRegex: m.op === "=~" || m.op === "!~", isEqual: m.op === "=" || m.op === "=~" };
}

export function opOf(m: SilenceMatcher): Op {
  return m.isRegex ? (m.isEqual ? "=~" : "!~") : m.isEqual ? "=" : "!=";
}

/** One matcher as URL text: name, operator, JSON-quoted value (`alertname="High"`). */
export function formatMatcher(m: MatcherRow): string {
  return `${m.name}${m.op}${JSON.stringify(m.value)}`;
}

export function parseMatcher(text: string): MatcherRow | null {
  const r = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(".*")\s*$/.exec(text);
  if (!r) return null;
  try {
    return { name: r[1], op: r[2] as Op, value: String(JSON.parse(r[3])) };
  } catch {
    return null;
  }
}

/** Alertmanager's matching: a missing label is the empty string; regexes are anchored. */
export function matches(m: MatcherRow, labels: Labels): boolean {
  const v = labels[m.name] ?? "";
  if (m.op === "=") return v === m.value;
  if (m.op === "!=") return v !== m.value;
  let hit: boolean;
  try {
    hit = new RegExp(`^(?:${m.value})$`).test(v);
  } catch {
    return false;
  }
  return m.op === "=~" ? hit : !hit;
}

/** Redraw ``container`` keeping the keyboard focus on the element with the same aria-label. */
export function keepFocus(container: HTMLElement, draw: () => void): void {
  const active = document.activeElement;
  const label = active && container.contains(active) ? active.getAttribute("aria-label") : null;
  draw();
  if (label) {
    const again = [...container.querySelectorAll<HTMLElement>("[aria-label]")].find((el) => el.getAttribute("aria-label") === label);
    again?.focus();
  }
}

/** The link that opens the form with these matchers. */
export function silenceLink(labels: Labels): string {
  const p = new URLSearchParams({ new: "1" });
  for (const [k, v] of Object.entries(labels)) p.append("m", formatMatcher({ name: k, op: "=", value: v }));
  return href("/silences", p);
}

function when(iso: string): string {
  return new Date(iso).toLocaleString();
}

function localInput(t: Date): string {
  const off = t.getTimezoneOffset() * 60_000;
  return new Date(t.getTime() - off).toISOString().slice(0, 16);
}

function describeMatcher(m: SilenceMatcher): string {
  return `${m.name}${opOf(m)}"${m.value}"`;
}

function problem(rows: MatcherRow[], endAt: number | null, startAt: number): string | null {
  if (!rows.length) return "Add at least one matcher.";
  for (const m of rows) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(m.name)) return `"${m.name}" is not a valid label name.`;
    if (m.op === "=~" || m.op === "!~") {
      try {
        new RegExp(m.value);
      } catch {
        return `The regular expression of ${m.name} does not parse.`;
      }
    }
  }
  if (rows.every((m) => matches(m, {}))) return "At least one matcher must not match an empty label (an empty value with = catches everything).";
  if (endAt === null) return "Give an end time or a duration such as 2h.";
  if (endAt <= startAt) return "The end must come after the start.";
  if (endAt <= Date.now()) return "The end must be in the future.";
  return null;
}

export function silencesPage(root: HTMLElement, _ctx: Ctx): Page {
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const notice = h("div", { id: "silence-notice", "aria-live": "polite" });
  const filter = h("select", { id: "silence-state", "aria-label": "Show silences" }, h("option", { value: "" }, "All states"), ...STATES.map((s) => h("option", { value: s }, s[0].toUpperCase() + s.slice(1))));
  filter.value = current().params.get("state") ?? "";
  const newButton = h("button", { type: "button", class: "primary", id: "new-silence" }, "New silence");
  root.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Silences"), summary, h("div", { class: "spacer" }), filter, newButton), notice);

  // ---------------------------------------------------------------- the form
  const formCard = card("New silence");
  formCard.el.id = "silence-form";
  const matcherList = h("div", { class: "matchers", role: "group", "aria-label": "Matchers" });
  const addMatcher = h("button", { type: "button", id: "add-matcher" }, "Add matcher");
  const start = h("input", { type: "datetime-local", id: "silence-start", "aria-label": "Start" });
  const duration = h("input", { type: "text", id: "silence-duration", spellcheck: "false", placeholder: DEFAULT_DURATION, "aria-label": "Duration, such as 30m, 2h or 1d" });
  const end = h("input", { type: "datetime-local", id: "silence-end", "aria-label": "End" });
  const creator = h("input", { type: "text", id: "silence-creator", autocomplete: "username", "aria-label": "Created by", required: true });
  const comment = h("textarea", { id: "silence-comment", rows: "2", "aria-label": "Comment", required: true });
  const formError = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary", id: "silence-submit" }, "Create silence");
  const cancel = h("button", { type: "button", class: "ghost", id: "silence-cancel" }, "Cancel");
  const form = h(
    "form",
    { class: "silence-form", "aria-label": "New silence" },
    matcherList,
    h("div", { class: "form-row" }, addMatcher),
    h(
      "div",
      { class: "form-row" },
      h("label", {}, h("span", {}, "Start"), start),
      h("label", {}, h("span", {}, "Duration"), duration),
      h("label", {}, h("span", {}, "End"), end),
    ),
    h("div", { class: "form-row" }, h("label", {}, h("span", {}, "Created by"), creator)),
    h("div", { class: "form-row wide" }, h("label", {}, h("span", {}, "Comment"), comment)),
    formError,
    h("div", { class: "form-row" }, submit, cancel),
  );
  const previewCard = card("Alerts this silence catches");
  previewCard.el.id = "silence-preview";
  formCard.body.append(form);
  setState(formCard.el, "ok");
  setState(previewCard.el, "ok"); // loading only while the form is open and the alerts load
  const editor = h("div", { class: "reports", id: "silence-editor", hidden: true }, formCard.el, previewCard.el);

  const listCard = card("Silences");
  listCard.el.id = "silence-list";
  root.append(editor, listCard.el);

  let rows: MatcherRow[] = [];
  let alerts: ActiveAlert[] | null = null;
  let alertsError = "";
  let silences: Silence[] = [];
  let controller: AbortController | null = null;
  let busy = false;

  function startAt(): number {
    const t = start.value ? new Date(start.value).getTime() : NaN;
    return Number.isNaN(t) ? Date.now() : t;
  }

  function endAt(): number | null {
    const d = parseDuration(duration.value || (end.value ? "" : DEFAULT_DURATION));
    if (d !== null) return startAt() + d * 1000;
    const t = end.value ? new Date(end.value).getTime() : NaN;
    return Number.isNaN(t) ? null : t;
  }

  /** The form as URL parameters (replacing the entry: typing makes no history). */
  function saveForm(): void {
    const p = current().params;
    p.delete("m");
    for (const m of rows) p.append("m", formatMatcher(m));
    for (const [k, el] of [["start", start], ["duration", duration], ["end", end], ["creator", creator], ["comment", comment]] as const) {
      if (el.value) p.set(k, el.value);
      else p.delete(k);
    }
    history.replaceState(null, "", href("/silences", p));
  }

  function drawMatchers(): void {
    matcherList.replaceChildren(
      ...rows.map((m, i) => {
        const name = h("input", { type: "text", class: "m-name", value: m.name, spellcheck: "false", placeholder: "label", "aria-label": `Matcher ${i + 1} label` });
        const op = h("select", { class: "m-op", "aria-label": `Matcher ${i + 1} operator` }, ...OPS.map((o) => h("option", { value: o }, o)));
        op.value = m.op;
        const value = h("input", { type: "text", class: "m-value", value: m.value, spellcheck: "false", placeholder: "value", "aria-label": `Matcher ${i + 1} value` });
        const remove = h("button", { type: "button", class: "ghost m-remove", "aria-label": `Remove matcher ${i + 1}` }, "×");
        const changed = () => {
          rows[i] = { name: name.value.trim(), op: op.value as Op, value: value.value };
          formError.textContent = "";
          saveForm();
          drawPreview();
        };
        name.addEventListener("input", changed);
        value.addEventListener("input", changed);
        op.addEventListener("change", changed);
        remove.addEventListener("click", () => {
          rows.splice(i, 1);
          saveForm();
          drawMatchers();
          drawPreview();
          (matcherList.querySelector<HTMLInputElement>(".m-name") ?? addMatcher).focus();
        });
        return h("div", { class: "matcher" }, name, op, value, remove);
      }),
    );
  }

  function drawPreview(): void {
    if (alerts === null) {
      if (alertsError) setState(previewCard.el, "error", alertsError);
      return;
    }
    const valid = rows.filter((m) => m.name);
    const caught = valid.length ? alerts.filter((a) => valid.every((m) => matches(m, a.labels))) : [];
    previewCard.el.querySelector("h3")!.textContent = `Alerts this silence catches: ${caught.length}`;
    previewCard.body.replaceChildren(
      caught.length
        ? h(
            "ul",
            { class: "alerts", id: "preview-alerts" },
            ...caught.map((a) =>
              h(
                "li",
                { class: `alert ${a.state === "firing" ? "crit" : ""}`, "data-alertname": a.labels.alertname ?? "" },
                h("strong", {}, a.labels.alertname ?? "alert"),
                h("span", { class: `badge ${a.state === "firing" ? "crit" : "warn"}` }, a.state),
                h("div", { class: "labels" }, ...Object.entries(a.labels).filter(([k]) => k !== "alertname").map(([k, v]) => h("code", {}, `${k}="${v}"`))),
              ),
            ),
          )
        : h("p", { class: "quiet" }, valid.length ? "No active alert matches these matchers." : "Add matchers to see the alerts they catch."),
    );
    setState(previewCard.el, "ok");
  }

  function openForm(): void {
    const p = current().params;
    rows = p.getAll("m").map(parseMatcher).filter((m): m is MatcherRow => m !== null);
    if (!rows.length) rows = [{ name: "alertname", op: "=", value: "" }];
    start.value = p.get("start") ?? localInput(new Date());
    duration.value = p.get("duration") ?? (p.get("end") ? "" : DEFAULT_DURATION);
    end.value = p.get("end") ?? "";
    creator.value = p.get("creator") ?? localStorage.getItem("vigil.silence.creator") ?? "";
    comment.value = p.get("comment") ?? "";
    editor.hidden = false;
    newButton.hidden = true;
    drawMatchers();
    if (alerts === null) setState(previewCard.el, "loading");
    drawPreview();
    void loadAlerts();
    const empty = [...matcherList.querySelectorAll<HTMLInputElement>(".m-value"), creator, comment].find((el) => !el.value);
    (empty ?? submit).focus();
  }

  function closeForm(): void {
    editor.hidden = true;
    newButton.hidden = false;
    const p = current().params;
    for (const k of ["new", "m", "start", "duration", "end", "creator", "comment"]) p.delete(k);
    history.replaceState(null, "", href("/silences", p));
    newButton.focus();
  }

  newButton.addEventListener("click", () => {
    update({ new: "1" });
    openForm();
  });
  cancel.addEventListener("click", closeForm);
  addMatcher.addEventListener("click", () => {
    rows.push({ name: "", op: "=", value: "" });
    saveForm();
    drawMatchers();
    drawPreview();
    [...matcherList.querySelectorAll<HTMLInputElement>(".m-name")].pop()?.focus();
  });
  for (const el of [start, end, creator, comment]) el.addEventListener("input", saveForm);
  duration.addEventListener("input", () => {
    if (duration.value) end.value = "";
    saveForm();
  });
  end.addEventListener("input", () => {
    if (end.value) duration.value = "";
    saveForm();
  });
  filter.addEventListener("change", () => {
    update({ state: filter.value || null });
    drawList();
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return;
    const matchers = rows.filter((m) => m.name || m.value);
    const s = startAt();
    const stop = endAt();
    const why = problem(matchers, stop, s) ?? (!creator.value.trim() ? "Say who creates the silence." : !comment.value.trim() ? "Add a comment saying why." : null);
    if (why) {
      formError.textContent = why;
      return;
    }
    busy = true;
    submit.disabled = true;
    formError.textContent = "";
    try {
      const { silenceID } = await createSilence({
        matchers: matchers.map(toApi),
        startsAt: new Date(Math.max(s, Date.now())).toISOString(),
        endsAt: new Date(stop!).toISOString(),
        createdBy: creator.value.trim(),
        comment: comment.value.trim(),
      });
      localStorage.setItem("vigil.silence.creator", creator.value.trim());
      closeForm();
      notice.replaceChildren(h("div", { class: "notice ok", role: "status", id: "silence-created", "data-id": silenceID }, "Silence created: ", h("code", {}, silenceID)));
      await loadSilences();
    } catch (err) {
      formError.textContent = `Cannot create the silence: ${err instanceof ApiError ? err.message : String(err)}`;
    } finally {
      busy = false;
      submit.disabled = false;
    }
  });

  // ---------------------------------------------------------------- the list
  function drawList(): void {
    const wanted = filter.value;
    const shown = silences.filter((s) => !wanted || s.status.state === wanted);
    const counts = STATES.map((st) => `${silences.filter((s) => s.status.state === st).length} ${st}`);
    summary.textContent = counts.join(", ");
    if (!shown.length) {
      listCard.body.replaceChildren(h("p", { class: "quiet" }, wanted ? `No ${wanted} silence.` : "No silence."));
      setState(listCard.el, "ok");
      return;
    }
    const body = h(
      "tbody",
      {},
      ...shown.map((s) => {
        const expire = s.status.state === "expired" ? null : h("button", { type: "button", class: "expire", "aria-label": `Expire silence ${s.id}` }, "Expire");
        expire?.addEventListener("click", async () => {
          expire.disabled = true;
          try {
            await expireSilence(s.id);
            notice.replaceChildren(h("div", { class: "notice ok", role: "status" }, "Silence expired: ", h("code", {}, s.id)));
            await loadSilences();
          } catch (err) {
            expire.disabled = false;
            notice.replaceChildren(h("div", { class: "notice error", role: "alert" }, `Cannot expire ${s.id}: ${err instanceof ApiError ? err.message : String(err)}`));
          }
        });
        const level = s.status.state === "active" ? "good" : s.status.state === "pending" ? "warn" : "";
        return h(
          "tr",
          { "data-id": s.id, "data-state": s.status.state },
          h("td", {}, h("span", { class: `badge ${level}` }, s.status.state)),
          h("td", {}, h("div", { class: "labels" }, ...s.matchers.map((m) => h("code", {}, describeMatcher(m))))),
          h("td", { class: "num" }, when(s.startsAt)),
          h("td", { class: "num" }, when(s.endsAt)),
          h("td", {}, s.createdBy),
          h("td", { class: "comment" }, s.comment),
          h("td", {}, expire),
        );
      }),
    );
    keepFocus(listCard.body, () => listCard.body.replaceChildren(
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "silences" },
          h("thead", {}, h("tr", {}, ...["State", "Matchers", "Starts", "Ends", "Created by", "Comment", ""].map((t) => h("th", { scope: "col" }, t)))),
          body,
        ),
      ),
    ));
    setState(listCard.el, "ok");
  }

  async function loadSilences(): Promise<void> {
    controller?.abort();
    controller = new AbortController();
    try {
      silences = await listSilences(controller.signal);
      drawList();
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      setState(listCard.el, "error", e instanceof ApiError ? e.message : String(e));
    }
  }

  async function loadAlerts(): Promise<void> {
    try {
      alerts = (await activeAlerts()).alerts;
      alertsError = "";
    } catch (e) {
      alertsError = `Cannot load the alerts for the preview: ${e instanceof ApiError ? e.message : String(e)}`;
      alerts = null;
    }
    drawPreview();
  }

  if (current().params.get("new")) openForm();

  return {
    async refresh() {
      await Promise.all([loadSilences(), editor.hidden ? Promise.resolve() : loadAlerts()]);
    },
    destroy() {
      controller?.abort();
    },
  };
}

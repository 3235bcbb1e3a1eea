// The admin page: users and groups, the jobs queue, experiments with per-arm intervals,
// eval runs with their HTML reports, and prompt templates with versions and diffs.
import { api, download, fetchText, seg } from "../api.js";
import { intervalChart } from "../charts.js";
import { clear, defs, errorBox, field, h, heading, num, table, time } from "../dom.js";
import { promptsCard } from "./admin_prompts.js";

function section(id, title, ...children) {
  return h("section.card", { "aria-labelledby": id }, h("h2", { id, text: title }), ...children);
}

function usersCard(ctx, users, groups) {
  const rows = users.map((u) => {
    const view = h("button.small", { type: "button", text: "View", "aria-label": `View ${u.name}` });
    view.addEventListener("click", () => {
      ctx.viewUser(u.id);
      location.hash = "#/chat";
    });
    return [u.name, h("code", { text: u.id }), u.group_name || "—", u.adapter_name || "—", time(u.created_at), view];
  });
  const groupRows = groups.map((g) => [g.name, h("code", { text: g.id }), String(g.members), g.adapter_name || "—", time(g.created_at)]);
  return section(
    "users-title",
    "Users and groups",
    table("Users", ["Name", "Id", "Group", "Adapter", "Created", "Look at"], rows),
    table("Groups", ["Name", "Id", "Members", "Adapter", "Created"], groupRows),
  );
}

function jobsCard() {
  const status = h("select", {}, ["", "queued", "running", "succeeded", "failed"].map((s) => h("option", { value: s, text: s || "any status" })));
  const out = h("div", { "aria-live": "polite" });
  async function load() {
    const params = new URLSearchParams({ limit: "50" });
    if (status.value) params.set("status", status.value);
    try {
      const jobs = await api(`/v1/admin/jobs?${params}`);
      const counts = Object.entries(jobs.counts).map(([k, v]) => [k, String(v)]);
      clear(out).append(
        defs(counts.length ? counts : [["jobs", "0"]]),
        table(
          "Recent jobs, newest first",
          ["Kind", "Status", "Progress", "Attempts", "User", "Created", "Error"],
          jobs.data.map((j) => [
            j.kind,
            h("span", { class: `status-${j.status}`, text: j.status }),
            h("progress", { max: "1", value: String(j.progress), "aria-label": `${j.kind} progress` }),
            String(j.attempts),
            j.user_id || "—",
            time(j.created_at),
            j.error ? h("span.error-text", { text: j.error.slice(0, 200) }) : "—",
          ]),
        ),
      );
    } catch (err) {
      clear(out).append(errorBox(err));
    }
  }
  status.addEventListener("change", load);
  const refresh = h("button.small.ghost", { type: "button", text: "Refresh", onclick: load });
  load();
  return section("jobs-title", "Jobs", h("div.toolbar", {}, field("Status", status), refresh), out);
}

function experimentDetail(e) {
  const metrics = [...new Set(e.metrics.flatMap((a) => Object.keys(a.metrics)))];
  const charts = metrics.map((m) =>
    intervalChart(
      `${m} per arm (95% interval)`,
      e.metrics.map((a) => {
        const est = a.metrics[m] || {};
        return { label: a.arm, value: est.value, lo: est.ci ? est.ci[0] : undefined, hi: est.ci ? est.ci[1] : undefined };
      }),
    ),
  );
  const rows = e.metrics.flatMap((a) =>
    Object.entries(a.metrics).map(([m, est]) => [
      a.arm,
      m,
      num(est.value),
      est.ci ? `${num(est.ci[0])} – ${num(est.ci[1])}` : "—",
      est.diff === null || est.diff === undefined ? "—" : `${num(est.diff)} (${est.diff_ci ? `${num(est.diff_ci[0])} – ${num(est.diff_ci[1])}` : "—"})`,
      num(est.p_value),
    ]),
  );
  return h(
    "div",
    {},
    defs([
      ["State", e.state],
      ["Control", e.control],
      ["Arms", e.metrics.map((a) => `${a.arm}: ${a.turns} turns, ${a.users} users, ${a.failed} failed`).join("; ")],
      ["Stopped", e.stop_reason || "—"],
    ]),
    h("div.charts", {}, charts),
    table(`Metrics of ${e.name} per arm`, ["Arm", "Metric", "Value", "95% interval", "Δ vs control (95%)", "p"], rows),
  );
}

async function experimentsCard() {
  const detail = h("div", { "aria-live": "polite" });
  const list = await api("/v1/experiments");
  const rows = list.map((e) => {
    const show = h("button.small", { type: "button", text: "Show", "aria-label": `Show experiment ${e.name}` });
    show.addEventListener("click", async () => {
      clear(detail).append(h("p.muted", { text: "Computing intervals…" }));
      try {
        clear(detail).append(h("h3", { text: e.name }), experimentDetail(await api(`/v1/experiments/${seg(e.id)}`)));
      } catch (err) {
        clear(detail).append(errorBox(err));
      }
    });
    return [e.name, e.state, e.arms.map((a) => a.name).join(", "), time(e.starts_at), show];
  });
  return section("exp-title", "Experiments", table("Experiments, newest first", ["Name", "State", "Arms", "Starts", "Details"], rows), detail);
}

async function evalRunsCard() {
  const { data } = await api("/v1/admin/eval-runs?limit=50");
  const rows = data.map((r) => {
    const get = h("button.small", { type: "button", text: "HTML report", "aria-label": `Download the report of ${r.id}` });
    get.addEventListener("click", async () => {
      try {
        download(`${r.id}.html`, await fetchText(`/v1/admin/eval-runs/${seg(r.id)}/report`), "text/html");
      } catch (err) {
        get.after(errorBox(err));
      }
    });
    return [r.suite, h("code", { text: r.id }), `${r.primary} = ${num(r.aggregates[r.primary])}`, `${r.cases} (${r.failed} failed)`, r.commit, r.created_at, get];
  });
  return section("evals-title", "Eval runs", table("Stored eval runs, newest first", ["Suite", "Run", "Primary", "Cases", "Commit", "When", "Report"], rows));
}

export async function render(view, ctx) {
  if (!ctx.me.is_admin) {
    view.append(heading("Admin"), h("p", { text: "This page needs the admin key." }));
    return;
  }
  await ctx.loadUsers();
  const [users, groups] = await Promise.all([api("/v1/admin/users"), api("/v1/admin/groups")]);
  view.append(heading("Admin"), usersCard(ctx, users.data, groups.data), jobsCard());
  for (const card of [experimentsCard, evalRunsCard, promptsCard]) {
    try {
      view.append(await card());
    } catch (err) {
      view.append(errorBox(err));
    }
  }
}

// The adapters page: what serves this user and why, the user's and group's adapter
// versions with gate verdicts and metrics, train now with live progress, promote, roll back.
import { api, followJob, seg } from "../api.js";
import { intervalChart } from "../charts.js";
import { announce, clear, defs, errorBox, field, h, heading, num, table, time } from "../dom.js";

const PLOTTED = [
  ["heldout_ppl_change_vs_base", "Style perplexity against base (change)"],
  ["general_ppl_change", "General-text perplexity change"],
  ["heldout_pref_accuracy", "Preference accuracy (held out)"],
];

function metricList(metrics) {
  const entries = Object.entries(metrics || {}).filter(([, v]) => typeof v !== "object" || v === null);
  return entries.length ? h("ul.metrics", {}, entries.map(([k, v]) => h("li", { text: `${k}: ${num(v)}` }))) : "—";
}

function verdict(a) {
  if (a.gate_passed === null) return "not gated";
  const head = a.gate_passed ? "passed" : "failed";
  return h("span", {}, h("strong", { text: head }), a.gate_reasons.length ? h("ul.reasons", {}, a.gate_reasons.map((r) => h("li", { text: r }))) : null);
}

function plots(adapters) {
  const figures = [];
  for (const [key, label] of PLOTTED) {
    const rows = adapters
      .filter((a) => typeof (a.metrics || {})[key] === "number")
      .map((a) => ({ label: `v${a.version} ${a.kind}`, value: a.metrics[key] }));
    if (rows.length) figures.push(intervalChart(`${label} by version`, rows.reverse()));
  }
  return figures.length ? h("div.charts", {}, figures) : null;
}

export async function render(view, ctx) {
  const base = `/v1/users/${seg(ctx.userId)}`;
  const body = h("div");
  const kind = h("select", {}, ["auto", "sft", "dpo"].map((k) => h("option", { value: k, text: k })));
  const steps = h("input", { type: "number", min: "1", max: "100000", step: "1", value: "4", inputmode: "numeric" });
  const progress = h("progress", { max: "1", value: "0", hidden: true });
  const trainOut = h("p", { "aria-live": "polite" });
  const train = h(
    "form.card",
    { "aria-labelledby": "train-title" },
    h("h2", { id: "train-title", text: "Train now" }),
    h("p.muted", { text: "Snapshot the data, train, gate against the base model, register, and promote if it passes." }),
    h("div.toolbar", {}, field("Kind", kind), field("Max steps", steps)),
    h("button", { type: "submit", text: "Train" }),
    progress,
    trainOut,
  );
  view.append(heading("Adapters"), body, train);

  async function act(button, path, what) {
    button.disabled = true;
    try {
      await api(`${base}/adapters${path}`, { method: "POST" });
      announce(what);
      await reload();
    } catch (err) {
      button.disabled = false;
      button.after(errorBox(err));
    }
  }

  function rows(adapters, own) {
    return adapters.map((a) => {
      let action = "—";
      if (own && (a.status === "candidate" || a.status === "retired") && a.gate_passed !== false) {
        action = h("button.small", { type: "button", text: "Promote", "aria-label": `Promote version ${a.version}` });
        action.addEventListener("click", () => act(action, `/${seg(a.id)}/promote`, `Version ${a.version} promoted`));
      }
      return [
        `v${a.version}`,
        a.kind,
        h("span", { class: `status-${a.status}`, text: a.status }),
        verdict(a),
        metricList(a.metrics),
        a.parent_id || "—",
        a.dataset ? `${a.dataset.sft_count} SFT / ${a.dataset.dpo_count} DPO` : "—",
        time(a.created_at),
        action,
      ];
    });
  }

  async function reload() {
    const list = await api(`${base}/adapters`);
    const s = list.serving;
    const rollback = h("button", { type: "button", text: "Roll back", disabled: !list.data.some((a) => a.status === "promoted") });
    rollback.addEventListener("click", () => act(rollback, "/rollback", "Rolled back"));
    const headers = ["Version", "Kind", "Status", "Gate", "Metrics", "Parent", "Dataset", "Created", "Action"];
    clear(body).append(
      h(
        "section.card.serving",
        { "aria-labelledby": "serving-title" },
        h("h2", { id: "serving-title", text: "Serving this user now" }),
        defs([
          ["Route", s.kind === "base" ? "base model" : `${s.kind} adapter`],
          ["Adapter", s.adapter || "none"],
          ["Why", s.reason],
        ]),
        rollback,
      ),
      h("section.card", { "aria-labelledby": "own-title" }, h("h2", { id: "own-title", text: "This user's adapters" }), table("User adapter versions, newest first", headers, rows(list.data, true)), plots(list.data)),
      h("section.card", { "aria-labelledby": "group-title" }, h("h2", { id: "group-title", text: `Group adapters${list.group_id ? ` (${list.group_id})` : ""}` }), list.group_id ? table("Group adapter versions, newest first", headers, rows(list.group, false)) : h("p.muted", { text: "This user is in no group." })),
    );
  }

  train.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = train.querySelector("button[type=submit]");
    button.disabled = true;
    clear(trainOut);
    try {
      const job = await api(`${base}/train`, { method: "POST", body: { kind: kind.value, max_steps: Number(steps.value) } });
      progress.hidden = false;
      progress.value = 0;
      announce(`Training job ${job.id} queued`);
      const done = await followJob(job.id, (j) => {
        progress.value = j.progress;
        trainOut.textContent = `Job ${j.id} (${j.kind}): ${j.status}, ${Math.round(j.progress * 100)}%`;
      }, { every: 1000, within: 30 * 60 * 1000 });
      const result = done.result || {};
      trainOut.textContent = done.status === "succeeded"
        ? `Training finished: ${result.status || "done"}${result.adapter ? ` (${result.adapter})` : ""}.`
        : `Training failed: ${done.error}`;
      announce(trainOut.textContent);
      await reload();
    } catch (err) {
      trainOut.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  await reload();
}

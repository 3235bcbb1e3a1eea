// The account page: history import, export download, and deleting the account.
import { api, ApiError, download, followJob, seg } from "../api.js";
import { announce, clear, errorBox, field, h, heading } from "../dom.js";

const FORMAT = '{"sessions": [{"id": "s1", "started_at": "2025-01-01T10:00:00Z", "turns": [{"id": "t1", "role": "user", "content": "…"}]}]}';

function importCard(base) {
  const file = h("input", { type: "file", accept: "application/json,.json", required: true });
  const progress = h("progress", { max: "1", hidden: true });
  const out = h("div", { "aria-live": "polite" });
  const form = h(
    "form.card",
    { "aria-labelledby": "import-title" },
    h("h2", { id: "import-title", text: "Import past conversations" }),
    h("p", {}, "A JSON file in the history format: ", h("code", { text: FORMAT })),
    field("History file", file),
    h("button", { type: "submit", text: "Import" }),
    progress,
    out,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(out);
    const chosen = file.files[0];
    if (!chosen) return;
    let body;
    try {
      body = JSON.parse(await chosen.text());
    } catch {
      out.append(errorBox(new Error(`${chosen.name} is not JSON; the format is ${FORMAT}`)));
      return;
    }
    progress.hidden = false;
    progress.removeAttribute("value");
    try {
      const done = await api(`${base}/history`, { method: "POST", body });
      const text = `Imported ${done.turns_imported} turns from ${done.sessions} sessions (${done.threads_created} new threads, ${done.turns_skipped} already there). They are searchable now.`;
      out.append(h("p", { text }));
      announce(text);
      if (done.job_id) {
        const status = h("p", { role: "status", text: "Distilling facts…" });
        out.append(status);
        progress.value = 0;
        const job = await followJob(done.job_id, (j) => {
          progress.value = j.progress ?? 0;
          status.textContent = `Distilling facts: ${Math.round(100 * (j.progress ?? 0))}% (${j.status})`;
        });
        progress.value = 1;
        status.textContent = job.status === "succeeded" ? "Facts distilled." : `Distillation ${job.status}: ${job.error ?? ""}`;
      } else {
        progress.value = 1;
      }
    } catch (err) {
      progress.hidden = true;
      out.append(errorBox(err));
    }
  });
  return form;
}

function exportCard(base, userId) {
  const button = h("button", { type: "button", text: "Download everything (JSON)" });
  const out = h("div", { "aria-live": "polite" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    clear(out).append(h("p.muted", { text: "Collecting…" }));
    try {
      const data = await api(`${base}/export`);
      download(`attune-export-${userId}.json`, JSON.stringify(data, null, 1));
      clear(out).append(h("p", { text: "Export downloaded." }));
      announce("Export downloaded");
    } catch (err) {
      clear(out).append(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return h(
    "section.card",
    { "aria-labelledby": "export-title" },
    h("h2", { id: "export-title", text: "Export" }),
    h("p", { text: "Everything Attune holds about this user: conversations, memories, profile and its history, feedback, preference pairs, writing samples, training datasets and adapters." }),
    button,
    out,
  );
}

function deleteCard(ctx, base) {
  const confirmBox = h("input", { type: "text", autocomplete: "off", required: true });
  const progress = h("progress", { max: "1", value: "0", hidden: true });
  const out = h("div", { "aria-live": "polite" });
  const form = h(
    "form.card.danger-zone",
    { "aria-labelledby": "delete-title" },
    h("h2", { id: "delete-title", text: "Delete this account" }),
    h("p", { text: "This removes, for good: every conversation and turn, all memories (and their search indexes), the persona profile and its history, feedback and preference pairs, writing samples, training datasets, this user's adapters (their weights too; group adapters trained on this data are retired and retrained without it), jobs and API keys. Keys stop working at once; the rest goes in a background job." }),
    field("Type DELETE to confirm", confirmBox),
    h("button.danger", { type: "submit", text: "Delete account" }),
    progress,
    out,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(out);
    if (confirmBox.value.trim() !== "DELETE") {
      out.append(errorBox(new Error("Type DELETE (in capitals) to confirm.")));
      confirmBox.focus();
      return;
    }
    let job;
    try {
      job = await api(`${base}`.replace(/\/$/, ""), { method: "DELETE" });
    } catch (err) {
      out.append(errorBox(err));
      return;
    }
    progress.hidden = false;
    const line = h("p", { text: `Deletion job ${job.id}: ${job.status}` });
    out.append(line);
    announce("Account deletion started");
    try {
      const done = await followJob(job.id, (j) => {
        progress.value = j.progress;
        line.textContent = `Deletion job ${j.id}: ${j.status} (${Math.round(j.progress * 100)}%)`;
      });
      line.textContent = done.status === "succeeded" ? "The account and everything held about it are deleted." : `The deletion failed: ${done.error}`;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
        progress.value = 1;
        line.textContent = `Your key no longer works: the account is being deleted (job ${job.id}). You can close this tab.`;
      } else line.textContent = err.message;
    }
    announce(line.textContent);
    if (!ctx.me.is_admin) setTimeout(() => ctx.signOut(), 4000);
  });
  return form;
}

export async function render(view, ctx) {
  const base = `/v1/users/${seg(ctx.userId)}`;
  view.append(heading("Account"), importCard(base), exportCard(base, ctx.userId), deleteCard(ctx, base));
}

// The profile page: persona fields, standing instructions, interests, measured style,
// the change history with restore, and the learned instruction blocks with rollback.
import { api, seg } from "../api.js";
import { announce, clear, defs, errorBox, field, h, heading, num, table, time } from "../dom.js";

const TEXT_FIELDS = [
  ["preferred_name", "Preferred name", 100],
  ["language", "Language", 40],
  ["tone", "Tone", 100],
];
const CHOICES = [
  ["formality", "Formality", ["formal", "casual"]],
  ["verbosity", "Verbosity", ["brief", "detailed"]],
];
const FORMATTING = ["emoji", "lists", "markdown"];

function choice(options, value) {
  const select = h("select", {}, h("option", { value: "", text: "not set" }));
  for (const o of options) select.append(h("option", { value: o, text: String(o), selected: o === value }));
  return select;
}

function shown(v) {
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function personaForm(base, profile, reload) {
  const inputs = {};
  const form = h("form.card", { "aria-labelledby": "persona-title" }, h("h2", { id: "persona-title", text: "Persona" }));
  for (const [key, label, max] of TEXT_FIELDS) {
    inputs[key] = h("input", { type: "text", maxlength: String(max), value: profile[key] || "" });
    form.append(field(label, inputs[key]));
  }
  for (const [key, label, options] of CHOICES) {
    inputs[key] = choice(options, profile[key]);
    form.append(field(label, inputs[key]));
  }
  const fmt = {};
  for (const key of FORMATTING) {
    const current = profile.formatting[key];
    fmt[key] = choice(["yes", "no"], current === undefined ? "" : current ? "yes" : "no");
    form.append(field(`Formatting: ${key}`, fmt[key]));
  }
  const interests = h("input", { type: "text", value: profile.interests.join(", ") });
  form.append(field("Interests", interests, "Comma-separated; replaces the list."), h("button", { type: "submit", text: "Save persona" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { reason: "edited on the profile page" };
    for (const [key] of [...TEXT_FIELDS, ...CHOICES]) {
      const value = inputs[key].value.trim() || null;
      if (value !== (profile[key] || null)) body[key] = value;
    }
    const formatting = {};
    for (const key of FORMATTING) {
      const value = fmt[key].value === "" ? null : fmt[key].value === "yes";
      if (value !== (profile.formatting[key] ?? null)) formatting[key] = value;
    }
    if (Object.keys(formatting).length) body.formatting = formatting;
    const list = interests.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (list.join("\n") !== profile.interests.join("\n")) body.interests = list;
    try {
      await api(`${base}/profile`, { method: "PATCH", body });
      announce("Profile saved");
      await reload();
    } catch (err) {
      form.append(errorBox(err));
    }
  });
  return form;
}

function instructionsCard(base, profile, reload) {
  const text = h("input", { type: "text", maxlength: "500", required: true });
  const list = h(
    "ul.instructions",
    {},
    profile.instructions.length
      ? profile.instructions.map((r) => {
          const remove = h("button.small.danger", { type: "button", text: "Remove", "aria-label": `Remove instruction: ${r.text}` });
          remove.addEventListener("click", async () => {
            try {
              await api(`${base}/profile`, { method: "PATCH", body: { instructions: { remove: [r.id] }, reason: "removed on the profile page" } });
              announce("Instruction removed");
              await reload();
            } catch (err) {
              remove.after(errorBox(err));
            }
          });
          return h(
            "li",
            {},
            h("span", { text: r.text }),
            r.source_turn_id ? h("a.small", { href: `#/chat?turn=${seg(r.source_turn_id)}`, text: " (from this turn)" }) : null,
            " ",
            remove,
          );
        })
      : h("li.muted", { text: "No standing instructions." }),
  );
  const form = h(
    "form.row",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api(`${base}/profile`, { method: "PATCH", body: { instructions: { add: [text.value] }, reason: "added on the profile page" } });
          announce("Instruction added");
          await reload();
        } catch (err) {
          form.append(errorBox(err));
        }
      },
    },
    field("New standing instruction", text),
    h("button", { type: "submit", text: "Add" }),
  );
  return h("section.card", { "aria-labelledby": "instr-title" }, h("h2", { id: "instr-title", text: "Standing instructions" }), list, form);
}

function historyCard(base, changes, reload) {
  const restore = (version) => {
    const b = h("button.small", { type: "button", text: `Restore v${version}` });
    b.addEventListener("click", async () => {
      if (!confirm(`Make version ${version} of the profile current again (as a new version)?`)) return;
      try {
        await api(`${base}/profile/restore`, { method: "POST", body: { version } });
        announce(`Profile version ${version} restored`);
        await reload();
      } catch (err) {
        b.after(errorBox(err));
      }
    });
    return b;
  };
  const rows = changes.map((c) => [
    String(c.version),
    c.field,
    `${shown(c.old_value)} → ${shown(c.new_value)}`,
    c.reason,
    c.source_turn_id ? h("a", { href: `#/chat?turn=${seg(c.source_turn_id)}`, text: "source turn" }) : "—",
    time(c.created_at),
    restore(c.version - 1),
  ]);
  return h(
    "section.card",
    { "aria-labelledby": "hist-title" },
    h("h2", { id: "hist-title", text: "Change history" }),
    h("p.muted", { text: "“Restore” brings back the profile as it was before that change." }),
    table("Profile changes, newest first", ["Version", "Field", "Change", "Reason", "Source", "When", "Restore"], rows),
  );
}

function blocksCard(base, blocks, reload) {
  const act = (label, path, what) => {
    const b = h("button.small", { type: "button", text: label });
    b.addEventListener("click", async () => {
      try {
        await api(`${base}/instruction-blocks${path}`, { method: "POST" });
        announce(what);
        await reload();
      } catch (err) {
        b.after(errorBox(err));
      }
    });
    return b;
  };
  const rows = blocks.blocks.map((b) => [
    String(b.version),
    b.id === blocks.active_id ? h("strong", { text: "active" }) : b.status,
    num(b.score),
    num(b.baseline_score),
    b.reason,
    h("details", {}, h("summary", { text: "Text" }), h("pre.prompt", { text: b.text }), b.critique ? h("p", { text: `Critique: ${b.critique}` }) : null),
    b.id === blocks.active_id ? "—" : act("Activate", `/${seg(b.id)}/activate`, `Block version ${b.version} active`),
  ]);
  return h(
    "section.card",
    { "aria-labelledby": "blocks-title" },
    h("h2", { id: "blocks-title", text: "Learned instruction blocks" }),
    h("p.muted", { text: "Learned from feedback; a candidate is activated only when it scores better than the block in use." }),
    table("Instruction block versions, newest first", ["Version", "Status", "Score", "Baseline", "Reason", "Block", "Use"], rows),
    blocks.active_id ? act("Roll back to the previous block", "/rollback", "Instruction block rolled back") : null,
  );
}

export async function render(view, ctx) {
  const base = `/v1/users/${seg(ctx.userId)}`;
  const body = h("div");
  view.append(heading("Profile"), body);
  async function reload() {
    const [profile, history, blocks] = await Promise.all([
      api(`${base}/profile`),
      api(`${base}/profile/history?limit=100`),
      api(`${base}/instruction-blocks`),
    ]);
    const style = Object.entries(profile.style || {}).map(([k, v]) => [k.replaceAll("_", " "), typeof v === "number" ? num(v) : shown(v)]);
    clear(body).append(
      h("p", { text: `Version ${profile.version}${profile.updated_at ? `, updated ${new Date(profile.updated_at).toLocaleString()}` : " (never set)"}.` }),
      personaForm(base, profile, reload),
      instructionsCard(base, profile, reload),
      h("section.card", { "aria-labelledby": "style-title" }, h("h2", { id: "style-title", text: "Measured writing style" }), style.length ? defs(style) : h("p.muted", { text: "Not measured yet." })),
      historyCard(base, history.changes, reload),
      blocksCard(base, blocks, reload),
    );
  }
  await reload();
}

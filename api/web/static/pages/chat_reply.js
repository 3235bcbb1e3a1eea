// What goes under a reply: votes, edit, regenerate, "why this answer"; the profile notice.
import { api, seg } from "../api.js";
import { announce, append, clear, defs, errorBox, field, h, num } from "../dom.js";

const NOT_OWN = "Feedback and chat need the user's own key; the admin key can only look.";

/** The profile's current version (0 when it has never been set). */
export async function profileVersion(base) {
  const profile = await api(`${base}/profile`);
  return profile.version;
}

function shown(value) {
  if (value === null || value === undefined) return "removed";
  if (typeof value === "string") return `“${value}”`;
  if (Array.isArray(value)) return value.map((v) => (v && v.text ? v.text : JSON.stringify(v))).join(", ");
  if (typeof value === "object" && value.text) return `“${value.text}”`;
  return JSON.stringify(value);
}

/**
 * A "Profile updated" notice with an undo, when the profile changed since `before`
 * (measured style and interests, which change in the background, are not announced).
 * @returns {Promise<HTMLElement|null>}
 */
export async function profileNotice(base, before) {
  const profile = await api(`${base}/profile`);
  if (profile.version <= before) return null;
  const { changes } = await api(`${base}/profile/history?limit=50`);
  const made = changes.filter(
    (c) => c.version > before && !["style", "interests"].includes(c.field.split(".")[0]),
  );
  if (!made.length) return null;
  const what = made
    .reverse()
    .map((c) => `${c.field.replaceAll("_", " ")} → ${shown(c.new_value)}`)
    .join("; ");
  const text = h("span", { text: what });
  const undo = h("button.small", { type: "button", text: "Undo" });
  const notice = h("div.notice", { role: "status" }, h("strong", { text: "Profile updated: " }), text, " ", undo);
  undo.addEventListener("click", async () => {
    undo.disabled = true;
    try {
      await api(`${base}/profile/restore`, { method: "POST", body: { version: before } });
      clear(notice).append(h("strong", { text: "Undone: " }), `the profile is back as it was (version ${before}).`);
      announce("Profile change undone");
    } catch (err) {
      undo.disabled = false;
      notice.append(errorBox(err));
    }
  });
  announce(`Profile updated: ${what}`);
  return notice;
}

function voteButtons(turn, canAct, status) {
  const up = h("button.small.vote", { type: "button", "aria-pressed": String(turn.rating === "up"), text: "▲ Good" });
  const down = h("button.small.vote", { type: "button", "aria-pressed": String(turn.rating === "down"), text: "▼ Bad" });
  up.setAttribute("aria-label", "Good reply");
  down.setAttribute("aria-label", "Bad reply");
  for (const [button, rating] of [
    [up, "up"],
    [down, "down"],
  ]) {
    button.disabled = !canAct;
    if (!canAct) button.title = NOT_OWN;
    button.addEventListener("click", async () => {
      try {
        await api("/v1/feedback", { method: "POST", body: { turn_id: turn.id, rating } });
        up.setAttribute("aria-pressed", String(rating === "up"));
        down.setAttribute("aria-pressed", String(rating === "down"));
        status.textContent = rating === "up" ? "Thanks: marked as a good reply." : "Marked as a bad reply.";
        announce(status.textContent);
      } catch (err) {
        status.replaceChildren(errorBox(err));
      }
    });
  }
  return [up, down];
}

function editForm(turn, content, status, close) {
  const area = h("textarea", { rows: "5", required: true });
  area.value = content.textContent;
  const form = h(
    "form.edit",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const fb = await api("/v1/feedback", {
            method: "POST",
            body: { turn_id: turn.id, rating: "down", edited_text: area.value },
          });
          status.textContent = `Your edit is saved; it becomes a preference pair (job ${fb.job.id}).`;
          announce(status.textContent);
          close();
        } catch (err) {
          form.append(errorBox(err));
        }
      },
    },
    field("How the reply should have read", area),
    h(
      "div.row",
      {},
      h("button.small", { type: "submit", text: "Save edit" }),
      h("button.small.ghost", { type: "button", text: "Cancel", onclick: close }),
    ),
  );
  return { form, area };
}

function memoryItem(m) {
  const sources = m.sources.length
    ? h(
        "ul.sources",
        {},
        m.sources.map((s) =>
          h(
            "li",
            {},
            s.thread_id
              ? h("a", { href: `#/chat/${seg(s.thread_id)}?turn=${seg(s.turn_id)}`, text: `${s.role || "turn"}: ${(s.content || s.turn_id).slice(0, 80)}` })
              : `turn ${s.turn_id} (deleted)`,
          ),
        ),
      )
    : h("span.muted", { text: "added by hand (no source turn)" });
  return h("li", {}, h("span.badge", { text: m.kind }), " ", m.text, h("div", {}, "Source: ", sources));
}

/** The "why this answer" panel, loaded when first opened. */
function whyPanel(base, turnId) {
  const body = h("div.why-body", {}, h("p.muted", { text: "Loading…" }));
  const details = h("details.why", {}, h("summary", { text: "Why this answer" }), body);
  let loaded = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) return;
    loaded = true;
    try {
      const why = await api(`${base}/turns/${seg(turnId)}/why`);
      const versions = Object.entries(why.prompt_versions).map(([k, v]) => `${k} ${v}`).join(", ");
      const arms = why.experiments.map((e) => `${e.name}: arm ${e.arm}`).join("; ");
      clear(body).append(
        defs([
          ["Route", why.route_kind === "base" ? "base model" : `${why.route_kind} adapter`],
          ["Adapter", why.adapter || "none (base model)"],
          ["System prompt version", why.prompt_version],
          ["Prompt versions", versions || "—"],
          ["Experiments", arms || "none"],
          ["Tokens", `${num(why.prompt_tokens)} in, ${num(why.completion_tokens)} out`],
        ]),
        h("h4", { text: `Memories used (${why.memories.length})` }),
        why.memories.length ? h("ul.memories", {}, why.memories.map(memoryItem)) : h("p.muted", { text: "No memory was quoted." }),
        h("h4", { text: "Composed system prompt" }),
        why.system_prompt === null
          ? h("p.muted", { text: "This reply was recorded before prompts were kept." })
          : h("pre.prompt", { tabindex: "0", "aria-label": "System prompt", text: why.system_prompt }),
        h(
          "details",
          {},
          h("summary", { text: `Every message sent (${why.messages.length})` }),
          h("ol.sent", {}, why.messages.map((m) => h("li", {}, h("strong", { text: `${m.role}: ` }), m.content))),
        ),
      );
    } catch (err) {
      clear(body).append(errorBox(err));
      loaded = false;
    }
  });
  return details;
}

/**
 * The actions under a stored reply.
 * @param {object} ctx - the page context (`isOwn`: the key is this user's)
 * @param {string} base - `/v1/users/{id}`
 * @param {object} turn - `{id, rating}`
 * @param {HTMLElement} content - the element holding the reply's text
 * @param {() => void} onRegenerate
 */
export function replyActions(ctx, base, turn, content, onRegenerate) {
  const status = h("p.action-status", { "aria-live": "polite" });
  const [up, down] = voteButtons(turn, ctx.isOwn, status);
  const edit = h("button.small", { type: "button", text: "Edit", disabled: !ctx.isOwn, title: ctx.isOwn ? null : NOT_OWN });
  const regen = h("button.small", { type: "button", text: "Regenerate", disabled: !ctx.isOwn, title: ctx.isOwn ? null : NOT_OWN });
  const bar = h("div.actions", { role: "group", "aria-label": "Reply actions" }, up, down, edit, regen);
  const wrap = h("div.reply-tools", {}, bar, status, whyPanel(base, turn.id));
  edit.addEventListener("click", () => {
    const { form, area } = editForm(turn, content, status, () => {
      form.remove();
      edit.disabled = false;
      edit.focus();
    });
    edit.disabled = true;
    bar.after(form);
    area.focus();
  });
  regen.addEventListener("click", () => onRegenerate());
  return wrap;
}

/** A turn as an article: who said it, the text, and for replies the route. */
export function turnArticle(turn, { label } = {}) {
  const content = h("div.content", { text: turn.content });
  const article = h(
    `article.turn.${turn.role}`,
    { id: turn.id ? `t-${turn.id}` : null, tabindex: "-1" },
    h("h3.who-said", { text: label || (turn.role === "user" ? "You" : "Attune") }),
    content,
  );
  if (turn.role === "assistant" && turn.target) {
    append(article, h("p.meta", { text: `${turn.target} · prompt ${turn.prompt_version || "—"}` }));
  }
  return { article, content };
}

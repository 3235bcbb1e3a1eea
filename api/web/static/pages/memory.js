// The memory page: list, search, edit and delete memories by kind; add one by hand.
import { api, seg } from "../api.js";
import { announce, clear, errorBox, field, h, heading, time } from "../dom.js";

const KINDS = ["fact", "preference", "instruction", "episodic", "summary"];
const EDITABLE = ["fact", "preference", "instruction"];
const PAGE = 25;

function kindSelect(kinds, { any = false, value = "" } = {}) {
  const select = h("select");
  if (any) select.append(h("option", { value: "", text: "All kinds" }));
  for (const k of kinds) select.append(h("option", { value: k, text: k, selected: k === value }));
  return select;
}

function sourceLinks(m) {
  if (!m.sources.length) return h("span.muted", { text: "added by hand" });
  return h(
    "ul.sources",
    {},
    m.sources.map((s) =>
      h("li", {}, h("a", { href: `#/chat?turn=${seg(s.turn_id)}`, text: s.external_id ? `turn ${s.external_id}` : `turn ${s.turn_id}` })),
    ),
  );
}

export async function render(view, ctx) {
  const base = `/v1/users/${seg(ctx.userId)}`;
  const state = { offset: 0, q: "", kind: "" };

  const q = h("input", { type: "search", name: "q", maxlength: "2000" });
  const kind = kindSelect(KINDS, { any: true });
  const invalid = h("input", { type: "checkbox", id: "include-invalid" });
  const search = h(
    "form.toolbar",
    { role: "search", "aria-label": "Search memories" },
    field("Search", q),
    field("Kind", kind),
    h("label.check", { for: "include-invalid" }, invalid, " Include superseded"),
    h("button", { type: "submit", text: "Search" }),
  );
  const results = h("div.results", { "aria-live": "polite" });
  const pager = h("div.row.pager");

  const newText = h("textarea", { rows: "2", required: true, maxlength: "4000" });
  const newKind = kindSelect(EDITABLE, { value: "fact" });
  const addForm = h(
    "form.card",
    { "aria-labelledby": "add-memory" },
    h("h2", { id: "add-memory", text: "Add a memory" }),
    field("Kind", newKind),
    field("What Attune should remember", newText),
    h("button", { type: "submit", text: "Add memory" }),
  );

  view.append(
    heading("Memory"),
    h("p", { text: "What Attune remembers about you, where each memory came from, and since when it holds." }),
    search,
    results,
    pager,
    addForm,
  );

  function item(m) {
    const li = h("li.memory", { id: `m-${m.id}` });
    const edit = h("button.small", { type: "button", text: "Edit", "aria-label": `Edit memory: ${m.text.slice(0, 40)}` });
    const del = h("button.small.danger", { type: "button", text: "Delete", "aria-label": `Delete memory: ${m.text.slice(0, 40)}` });
    const body = h(
      "div",
      {},
      h("span.badge", { text: m.kind }),
      m.score !== null && m.score !== undefined ? h("span.muted", { text: ` score ${m.score.toFixed(3)}` }) : null,
      h("p.memory-text", { text: m.text }),
      h(
        "p.meta",
        {},
        "Valid from ",
        time(m.valid_from),
        m.invalid_at ? h("span", {}, " · invalid since ", time(m.invalid_at)) : " · still valid",
        " · added ",
        time(m.created_at),
      ),
      h("div.meta", {}, "Sources: ", sourceLinks(m)),
    );
    li.append(body, h("div.row", {}, EDITABLE.includes(m.kind) ? edit : null, del));
    edit.addEventListener("click", () => {
      const text = h("textarea", { rows: "3", required: true, maxlength: "4000" });
      text.value = m.text;
      const k = kindSelect(EDITABLE, { value: m.kind });
      const form = h(
        "form.edit",
        {
          onsubmit: async (event) => {
            event.preventDefault();
            try {
              const saved = await api(`${base}/memories/${seg(m.id)}`, { method: "PATCH", body: { text: text.value, kind: k.value } });
              li.replaceWith(item(saved));
              announce("Memory saved");
            } catch (err) {
              form.append(errorBox(err));
            }
          },
        },
        field("Text", text),
        field("Kind", k),
        h("div.row", {}, h("button.small", { type: "submit", text: "Save" }), h("button.small.ghost", { type: "button", text: "Cancel", onclick: () => li.replaceWith(item(m)) })),
      );
      li.replaceChildren(form);
      text.focus();
    });
    del.addEventListener("click", async () => {
      if (!confirm(`Delete this memory everywhere?\n\n${m.text}`)) return;
      try {
        await api(`${base}/memories/${seg(m.id)}`, { method: "DELETE" });
        li.remove();
        announce("Memory deleted");
      } catch (err) {
        li.append(errorBox(err));
      }
    });
    return li;
  }

  async function load() {
    clear(results).append(h("p.muted", { text: "Loading…" }));
    clear(pager);
    let data;
    let total = null;
    if (state.q) {
      const params = new URLSearchParams({ q: state.q, k: "50", include_invalid: String(invalid.checked) });
      if (state.kind) params.append("kind", state.kind);
      ({ data } = await api(`${base}/memories/search?${params}`));
    } else {
      const params = new URLSearchParams({ limit: String(PAGE), offset: String(state.offset), include_invalid: String(invalid.checked) });
      if (state.kind) params.set("kind", state.kind);
      ({ data, total } = await api(`${base}/memories?${params}`));
    }
    const summary = state.q
      ? `${data.length} memories match “${state.q}”.`
      : `${total} memories${state.kind ? ` of kind ${state.kind}` : ""}; showing ${data.length ? state.offset + 1 : 0}–${state.offset + data.length}.`;
    clear(results).append(h("p", { text: summary }), data.length ? h("ul.memory-list", {}, data.map(item)) : h("p.muted", { text: "Nothing found." }));
    if (!state.q && total > PAGE) {
      const prev = h("button.small.ghost", { type: "button", text: "Newer", disabled: state.offset === 0 });
      const next = h("button.small.ghost", { type: "button", text: "Older", disabled: state.offset + PAGE >= total });
      prev.addEventListener("click", () => {
        state.offset = Math.max(0, state.offset - PAGE);
        load();
      });
      next.addEventListener("click", () => {
        state.offset += PAGE;
        load();
      });
      pager.append(prev, next);
    }
  }

  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    state.q = q.value.trim();
    state.kind = kind.value;
    state.offset = 0;
    try {
      await load();
    } catch (err) {
      clear(results).append(errorBox(err));
    }
  });
  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api(`${base}/memories`, { method: "POST", body: { kind: newKind.value, text: newText.value } });
      newText.value = "";
      announce("Memory added");
      state.q = "";
      q.value = "";
      await load();
    } catch (err) {
      addForm.append(errorBox(err));
    }
  });
  await load();
}

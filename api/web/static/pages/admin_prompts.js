// Prompt templates for the admin page: versions, the active one, a version's source and
// a line diff between two versions.
import { api, seg } from "../api.js";
import { clear, errorBox, field, h } from "../dom.js";

/** A line diff (longest common subsequence): `[kind, line]` with kind " ", "-" or "+". */
export function diffLines(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push([" ", x[i]]);
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push(["-", x[i++]]);
    else out.push(["+", y[j++]]);
  }
  while (i < n) out.push(["-", x[i++]]);
  while (j < m) out.push(["+", y[j++]]);
  return out;
}

function promptBlock(p) {
  const from = h("select", {}, p.versions.map((v) => h("option", { value: v, text: v })));
  const to = h("select", {}, p.versions.map((v, i) => h("option", { value: v, text: v, selected: i === p.versions.length - 1 })));
  const out = h("div", { "aria-live": "polite" });
  const show = h("button.small", { type: "button", text: "Show “to”" });
  const diff = h("button.small", { type: "button", text: "Diff", disabled: p.versions.length < 2 });
  const source = (v) => api(`/v1/prompts/${seg(p.name)}/${seg(v)}`);
  show.addEventListener("click", async () => {
    try {
      const s = await source(to.value);
      clear(out).append(h("p", { text: `Variables: ${s.variables.join(", ") || "none"}` }), h("pre.prompt", { tabindex: "0", text: s.template }));
    } catch (err) {
      clear(out).append(errorBox(err));
    }
  });
  diff.addEventListener("click", async () => {
    try {
      const [a, b] = await Promise.all([source(from.value), source(to.value)]);
      const pre = h("pre.diff", { tabindex: "0", "aria-label": `Diff of ${p.name} ${from.value} to ${to.value}` });
      for (const [kind, line] of diffLines(a.template, b.template)) {
        pre.append(h(kind === "+" ? "ins" : kind === "-" ? "del" : "span", { text: `${kind} ${line}\n` }));
      }
      clear(out).append(pre);
    } catch (err) {
      clear(out).append(errorBox(err));
    }
  });
  return h(
    "div.prompt-item",
    {},
    h("h3", { text: p.name }),
    h("p", { text: `Versions: ${p.versions.join(", ")}${p.active ? ` · active: ${p.active}` : ""}` }),
    h("div.toolbar", {}, field("From", from), field("To", to), show, diff),
    out,
  );
}

/** The prompt templates card. */
export async function promptsCard() {
  const { data } = await api("/v1/prompts");
  return h("section.card", { "aria-labelledby": "prompts-title" }, h("h2", { id: "prompts-title", text: "Prompt templates" }), data.map(promptBlock));
}

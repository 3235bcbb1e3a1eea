// Small DOM helpers: build elements without innerHTML (text is always text, never markup).

/**
 * Create an element.
 * @param {string} tag - tag name, optionally with classes: "button.small.ghost"
 * @param {Object<string, any>} [props] - attributes; `on<event>` adds a listener, `text` sets
 *   textContent, `class` adds classes, `hidden`/`disabled`/`checked` set properties
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.classList.add(...classes);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "class") {
      el.classList.add(...String(value).split(/\s+/).filter(Boolean));
    } else if (["hidden", "disabled", "checked", "value", "open", "required"].includes(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, ...children);
  return el;
}

/** Append children, skipping empty ones; strings become text nodes. */
export function append(el, ...children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Remove every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A short local date and time for an ISO timestamp ("—" for none). */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** A `<time>` element for an ISO timestamp. */
export function time(iso) {
  return iso ? h("time", { datetime: iso, text: when(iso) }) : h("span", { text: "—" });
}

/** Say `message` to screen readers (and show it in the status line). */
export function announce(message) {
  const region = document.getElementById("status");
  if (!region) return;
  region.textContent = "";
  // A fresh text node after a tick is read even when the message repeats.
  setTimeout(() => {
    region.textContent = message;
  }, 30);
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => {
    region.textContent = "";
  }, 6000);
}

/** An inline error message a person can act on. */
export function errorBox(err) {
  const message = err && err.message ? err.message : String(err);
  return h("p.error", { role: "alert", text: message });
}

/** A labelled form field: `<label>` + control, tied by id. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h("span.hint", { id: `${id}-hint`, text: hint }) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div.field", {}, h("label", { for: id, text: label }), control, hintEl);
}

/** A page heading that takes focus, so keyboard and screen-reader users land on it. */
export function heading(text) {
  return h("h1", { tabindex: "-1", text });
}

/** Number formatting for metrics: 3 significant decimals, "—" for none. */
export function num(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}

/** A `<dl>` of label → value pairs (values may be nodes). */
export function defs(pairs) {
  const dl = h("dl.defs");
  for (const [k, v] of pairs) append(dl, h("dt", { text: k }), h("dd", {}, v ?? "—"));
  return dl;
}

/** A table with a caption, headers and rows of cells (strings or nodes). */
export function table(caption, headers, rows) {
  return h(
    "div.table-wrap",
    {},
    h(
      "table",
      {},
      h("caption", { text: caption }),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col", text: t })))),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c ?? "—"))))
          : h("tr", {}, h("td", { colspan: String(headers.length), text: "Nothing yet." })),
      ),
    ),
  );
}

// The app shell: sign-in, navigation, the admin's user switcher, and the hash router.
import { api, ApiError, getKey, setKey } from "./api.js";
import { announce, clear, errorBox, field, h, heading } from "./dom.js";

const VIEW_USER = "attune.viewUser";
const PAGES = {
  chat: () => import("./pages/chat.js"),
  memory: () => import("./pages/memory.js"),
  profile: () => import("./pages/profile.js"),
  adapters: () => import("./pages/adapters.js"),
  account: () => import("./pages/account.js"),
  admin: () => import("./pages/admin.js"),
};
const TITLES = {
  chat: "Chat",
  memory: "Memory",
  profile: "Profile",
  adapters: "Adapters",
  account: "Account",
  admin: "Admin",
};

const main = document.getElementById("main");
let me = null;
let rendering = 0;

/** Parse `#/page/a/b?x=1` into its page, path parts and query. */
function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || "chat", parts: parts.slice(1), params: new URLSearchParams(query || "") };
}

/** The user the pages show: the key's own, or the one the admin chose. */
function viewedUser() {
  if (!me) return null;
  if (me.user_id) return me.user_id;
  return sessionStorage.getItem(VIEW_USER);
}

function showShell(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  for (const el of document.querySelectorAll("[data-admin]")) el.hidden = !(signedIn && me && me.is_admin);
}

function markCurrent(page) {
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function signInForm(problem) {
  const input = h("input", {
    type: "password",
    name: "key",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const form = h(
    "form.card.sign-in",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        await signIn(input.value.trim());
      },
    },
    heading("Sign in to Attune"),
    h("p", {
      text: "Paste an API key. A user key shows that user's chats, memory, profile and adapters; the admin key can look at every user. The key stays in this tab only.",
    }),
    field("API key", input, "Create one with `attune users create NAME`; `make run` prints the first."),
    problem ? errorBox(problem) : null,
    h("button", { type: "submit", text: "Sign in" }),
  );
  clear(main).append(form);
  input.focus();
}

async function signIn(key) {
  try {
    me = await api("/v1/me", { key });
  } catch (err) {
    signInForm(err instanceof ApiError && err.status === 401 ? new Error("That key is not valid (or was revoked).") : err);
    return;
  }
  setKey(key);
  announce(me.is_admin ? "Signed in with the admin key" : `Signed in as ${me.name}`);
  await afterSignIn();
  if (!location.hash || location.hash === "#/") location.hash = me.is_admin && !viewedUser() ? "#/admin" : "#/chat";
  else render();
}

async function afterSignIn() {
  showShell(true);
  document.getElementById("who-name").textContent = me.is_admin ? "Admin" : me.name;
  if (me.is_admin) await loadUsers();
}

/** Fill the admin's user switcher; keeps the current choice when it still exists. */
export async function loadUsers() {
  const select = document.getElementById("user-switch");
  const { data } = await api("/v1/admin/users");
  const current = viewedUser();
  clear(select).append(h("option", { value: "", text: "— choose a user —" }));
  for (const u of data) {
    select.append(
      h("option", { value: u.id, text: `${u.name} (${u.group_name || "no group"})`, selected: u.id === current }),
    );
  }
  if (current && !data.some((u) => u.id === current)) sessionStorage.removeItem(VIEW_USER);
}

/** Switch the user the admin is looking at. */
export function viewUser(userId) {
  if (userId) sessionStorage.setItem(VIEW_USER, userId);
  else sessionStorage.removeItem(VIEW_USER);
  document.getElementById("user-switch").value = userId || "";
  announce(userId ? `Now viewing user ${userId}` : "No user chosen");
  render();
}

function signOut() {
  setKey(null);
  sessionStorage.removeItem(VIEW_USER);
  me = null;
  showShell(false);
  location.hash = "";
  signInForm();
}

async function render() {
  if (!me) return;
  const ticket = ++rendering;
  const { page, parts, params } = route();
  const load = PAGES[page];
  markCurrent(page);
  document.title = `${TITLES[page] || "Not found"} · Attune`;
  if (!load) {
    clear(main).append(heading("Page not found"), h("p", {}, h("a", { href: "#/chat", text: "Go to chat" })));
    return;
  }
  const userId = viewedUser();
  if (page !== "admin" && !userId) {
    clear(main).append(
      heading(TITLES[page]),
      h("p", { text: "Choose a user in “Viewing user” above (or on the Admin page) to see their data." }),
    );
    return;
  }
  const ctx = { me, userId, parts, params, isOwn: me.user_id === userId, viewUser, loadUsers, signOut };
  try {
    const module = await load();
    if (ticket !== rendering) return;
    const view = h("div.page");
    clear(main).append(view);
    await module.render(view, ctx);
    const h1 = view.querySelector("h1");
    if (h1 && !params.get("turn")) h1.focus({ preventScroll: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut();
      signInForm(new Error("The key stopped working (revoked or deleted). Sign in again."));
      return;
    }
    if (ticket === rendering) clear(main).append(heading(TITLES[page]), errorBox(err));
  }
}

async function boot() {
  document.getElementById("sign-out").addEventListener("click", signOut);
  document.getElementById("user-switch").addEventListener("change", (e) => viewUser(e.target.value));
  window.addEventListener("hashchange", render);
  const key = getKey();
  if (!key) {
    signInForm();
    return;
  }
  try {
    me = await api("/v1/me");
  } catch (err) {
    setKey(null);
    signInForm(err instanceof ApiError && err.status === 401 ? null : err);
    return;
  }
  await afterSignIn();
  render();
}

boot();

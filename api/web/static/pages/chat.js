// The chat page: a thread sidebar, the conversation with streamed replies, the composer.
import { api, ApiError, seg, streamChat } from "../api.js";
import { announce, append, clear, errorBox, field, h, heading, when } from "../dom.js";
import { profileNotice, profileVersion, replyActions, turnArticle } from "./chat_reply.js";

const TEMP_REFUSED = "Temporary chats are not available on this server (the API refused them).";

export async function render(view, ctx) {
  const base = `/v1/users/${seg(ctx.userId)}`;
  if (!ctx.parts[0] && ctx.params.get("turn")) {
    // A link to a turn (from a memory's sources): find its thread.
    const found = await api(`${base}/turns/${seg(ctx.params.get("turn"))}`);
    location.replace(`#/chat/${seg(found.thread_id)}?turn=${seg(found.turn.id)}`);
    return;
  }
  const state = { threadId: ctx.parts[0] || null, temp: [], busy: false };

  const list = h("ul.thread-list");
  const toggle = h("button.ghost.threads-toggle", { type: "button", "aria-expanded": "false", "aria-controls": "thread-panel", text: "Threads" });
  const panel = h("div.thread-panel", { id: "thread-panel" }, list);
  const newChat = h("button", { type: "button", text: "New chat", onclick: () => (location.hash = "#/chat") });
  const sidebar = h("nav.threads", { "aria-label": "Threads" }, h("div.row", {}, newChat, toggle), h("h2", { text: "Threads" }), panel);
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    panel.classList.toggle("open", open);
  });

  const title = h("h2", { id: "thread-title", text: "New chat" });
  const messages = h("div.messages");
  const input = h("textarea", { name: "message", rows: "3", required: true, disabled: !ctx.isOwn });
  const temporary = h("input", { type: "checkbox", role: "switch", id: "temporary", disabled: !ctx.isOwn });
  const tempLabel = h("label.switch", { for: "temporary" }, temporary, " Temporary chat: nothing read from memory or written to it");
  const send = h("button", { type: "submit", text: "Send", disabled: !ctx.isOwn });
  const composer = h(
    "form.composer",
    { "aria-label": "Send a message" },
    tempLabel,
    field("Message", input, ctx.isOwn ? "Enter sends; Shift+Enter starts a new line." : "Chat needs the user's own key; the admin key can only look."),
    h("div.row", {}, send),
  );
  const convo = h("section.convo", { "aria-labelledby": "thread-title" }, title, messages, composer);
  view.append(heading("Chat"), h("div.chat", {}, sidebar, convo));

  temporary.addEventListener("change", () => {
    if (temporary.checked) {
      state.threadId = null;
      state.temp = [];
      clear(messages).append(h("p.notice", { text: "Temporary chat: this conversation is not stored, not remembered and not used for training." }));
      title.textContent = "Temporary chat";
      history.replaceState(null, "", "#/chat");
    } else {
      title.textContent = "New chat";
      clear(messages);
    }
    markThread();
  });

  function markThread() {
    for (const a of list.querySelectorAll("a")) {
      if (a.dataset.thread === state.threadId) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }

  async function loadThreads() {
    const page = await api(`${base}/threads?limit=100`);
    clear(list);
    toggle.textContent = `Threads (${page.total})`;
    if (!page.data.length) list.append(h("li.muted", { text: "No threads yet." }));
    for (const t of page.data) list.append(threadItem(t));
    markThread();
  }

  function threadItem(t) {
    const name = t.title || "Untitled";
    const link = h("a", { href: `#/chat/${seg(t.id)}`, "data-thread": t.id }, h("span.title", { text: name }), h("span.when", { text: when(t.last_activity) }));
    const rename = h("button.small.ghost", { type: "button", text: "Rename", "aria-label": `Rename “${name}”` });
    const del = h("button.small.ghost.danger", { type: "button", text: "Delete", "aria-label": `Delete “${name}”` });
    const item = h("li", {}, link, h("div.row", {}, rename, del));
    rename.addEventListener("click", () => {
      const box = h("input", { type: "text", maxlength: "200", required: true, value: name });
      const form = h(
        "form.rename",
        {
          onsubmit: async (event) => {
            event.preventDefault();
            try {
              await api(`${base}/threads/${seg(t.id)}`, { method: "PATCH", body: { title: box.value } });
              announce("Thread renamed");
              if (state.threadId === t.id) title.textContent = box.value.trim();
              await loadThreads();
            } catch (err) {
              form.append(errorBox(err));
            }
          },
        },
        field("New title", box),
        h("div.row", {}, h("button.small", { type: "submit", text: "Save" }), h("button.small.ghost", { type: "button", text: "Cancel", onclick: () => loadThreads() })),
      );
      item.replaceChildren(form);
      box.focus();
      box.select();
    });
    del.addEventListener("click", async () => {
      if (!confirm(`Delete “${name}” and everything Attune learned from it (memories, profile changes, feedback, training data)? This cannot be undone.`)) return;
      try {
        const out = await api(`${base}/threads/${seg(t.id)}`, { method: "DELETE" });
        announce(`Thread deleted (${out.jobs.length} turns being removed)`);
        if (state.threadId === t.id) location.hash = "#/chat";
        else await loadThreads();
      } catch (err) {
        item.append(errorBox(err));
      }
    });
    return item;
  }

  async function loadThread(threadId, focusTurn) {
    let detail;
    try {
      detail = await api(`${base}/threads/${seg(threadId)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        title.textContent = "Thread not found";
        messages.append(errorBox(new Error("There is no such thread for this user (it may have been deleted).")));
        state.threadId = null;
        return;
      }
      throw err;
    }
    title.textContent = detail.thread.title || "Untitled";
    const userText = {};
    const replies = {};
    for (const turn of detail.turns) {
      if (turn.role === "user") {
        userText[turn.id] = turn.content;
        messages.append(turnArticle(turn).article);
      } else if (turn.role === "assistant") {
        const again = replies[turn.reply_to_id] = (replies[turn.reply_to_id] || 0) + 1;
        messages.append(replyBlock(turn, userText[turn.reply_to_id] || "", again > 1 ? "Attune (regenerated)" : null));
      } else {
        messages.append(turnArticle(turn).article);
      }
    }
    if (focusTurn) {
      const target = document.getElementById(`t-${focusTurn}`);
      if (target) {
        target.classList.add("highlight");
        target.scrollIntoView({ block: "center" });
        target.focus({ preventScroll: true });
      }
    }
  }

  function replyBlock(turn, userText, label) {
    const { article, content } = turnArticle(turn, { label });
    article.append(replyActions(ctx, base, turn, content, () => regenerate(turn, userText, article)));
    return article;
  }

  async function regenerate(turn, userText, after) {
    const body = { model: "attune", messages: [{ role: "user", content: userText || "…" }], attune: { regenerate: turn.id } };
    await stream(body, { after, label: "Attune (regenerated)", userText });
  }

  /** Stream one reply into a new article; returns the final `attune` object. */
  async function stream(body, { after = null, label = null, userText = "" } = {}) {
    if (state.busy) return null;
    state.busy = true;
    send.disabled = true;
    const turn = { role: "assistant", content: "" };
    const { article, content } = turnArticle(turn, { label });
    article.setAttribute("aria-busy", "true");
    if (after) {
      let last = after;
      while (last.nextElementSibling && last.nextElementSibling.classList.contains("assistant")) last = last.nextElementSibling;
      last.after(article);
    } else messages.append(article);
    article.scrollIntoView({ block: "end" });
    try {
      const { attune } = await streamChat(body, (text) => {
        content.textContent += text;
      });
      article.removeAttribute("aria-busy");
      if (attune.temporary) {
        article.append(h("p.meta", { text: "temporary · not stored" }));
      } else {
        article.id = `t-${attune.turn_id}`;
        const stored = { id: attune.turn_id, role: "assistant", rating: null, target: attune.target, prompt_version: attune.prompt_version };
        append(article, h("p.meta", { text: `${attune.target} · prompt ${attune.prompt_version}` }));
        article.append(replyActions(ctx, base, stored, content, () => regenerate(stored, userText, article)));
      }
      announce("Reply received");
      return attune;
    } catch (err) {
      article.removeAttribute("aria-busy");
      if (err instanceof ApiError && err.param && err.param.startsWith("attune.temporary")) disableTemporary();
      article.append(errorBox(err));
      announce(`The reply failed: ${err.message}`);
      return null;
    } finally {
      state.busy = false;
      send.disabled = !ctx.isOwn;
    }
  }

  function disableTemporary() {
    temporary.checked = false;
    temporary.disabled = true;
    tempLabel.title = TEMP_REFUSED;
    tempLabel.append(h("span.hint", { text: ` (${TEMP_REFUSED})` }));
  }

  async function sendMessage(text) {
    const isTemp = temporary.checked;
    messages.querySelector("p.notice:only-child")?.remove();
    messages.append(turnArticle({ role: "user", content: text }).article);
    const before = isTemp ? null : await profileVersion(base);
    const body = isTemp
      ? { model: "attune", messages: [...state.temp, { role: "user", content: text }], attune: { temporary: true } }
      : { model: "attune", messages: [{ role: "user", content: text }], ...(state.threadId ? { thread_id: state.threadId } : {}) };
    const attune = await stream(body, { userText: text });
    if (!attune) return;
    if (isTemp) {
      const reply = messages.lastElementChild.querySelector(".content").textContent;
      state.temp.push({ role: "user", content: text }, { role: "assistant", content: reply });
      return;
    }
    const isNew = state.threadId !== attune.thread_id;
    state.threadId = attune.thread_id;
    if (isNew) history.replaceState(null, "", `#/chat/${seg(attune.thread_id)}`);
    const notice = await profileNotice(base, before);
    if (notice) messages.append(notice);
    await loadThreads();
    if (isNew) title.textContent = list.querySelector(`a[data-thread="${state.threadId}"] .title`)?.textContent || "Chat";
  }

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || state.busy) return;
    input.value = "";
    await sendMessage(text);
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  await loadThreads();
  if (state.threadId) await loadThread(state.threadId, ctx.params.get("turn"));
}

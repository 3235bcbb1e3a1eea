// Browser journeys of the Attune web app in a real, headless Chromium against a real
// `attune serve`. Run by tests/integration/test_web_browser.py; on its own:
//   ATTUNE_URL=http://127.0.0.1:8000 ATTUNE_ADMIN_KEY=... node journeys.mjs
// Screenshots (desktop and 390-px phone width) go to $ARTIFACTS (default ./artifacts).
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const URL_ = process.env.ATTUNE_URL;
const ADMIN = process.env.ATTUNE_ADMIN_KEY;
const OUT = process.env.ARTIFACTS || new URL("./artifacts", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };
const timings = [];
const failures = [];
const notes = [];

if (!URL_ || !ADMIN) throw new Error("set ATTUNE_URL and ATTUNE_ADMIN_KEY");
mkdirSync(OUT, { recursive: true });

async function call(path, key, { method = "GET", body } = {}) {
  const r = await fetch(URL_ + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function until(what, fn, { within = 60000, every = 300 } = {}) {
  const end = Date.now() + within;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: `${OUT}/${name}-desktop.png`, fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(150);
  await page.screenshot({ path: `${OUT}/${name}-phone.png`, fullPage: true });
  // The phone layout must not scroll sideways.
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= PHONE.width + 1, `${name}: the page is ${wide}px wide at phone width`);
  await page.setViewportSize(DESKTOP);
}

async function axe(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(!bad.length, `axe on ${name}: ${JSON.stringify(bad, null, 1)}`);
  for (const v of result) notes.push(`axe ${name}: ${v.impact} ${v.id} (${v.help})`);
}

async function newPage(browser) {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) failures.push(`CSP: ${m.text()}`);
  });
  page.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
  page.on("dialog", (d) => d.accept());
  return page;
}

async function signIn(page, key) {
  await page.goto(URL_ + "/");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#nav").waitFor({ state: "visible" });
}

async function send(page, text) {
  const before = await page.locator("article.turn.assistant").count();
  const streamed = page.waitForResponse((r) => r.url().endsWith("/v1/chat/completions"));
  const box = page.getByRole("textbox", { name: "Message", exact: true });
  await box.fill(text);
  await box.press("Enter");
  const response = await streamed;
  check((response.headers()["content-type"] || "").startsWith("text/event-stream"), "the reply was not streamed");
  const reply = page.locator("article.turn.assistant").nth(before);
  await until("the reply", async () => (await reply.getAttribute("aria-busy")) === null, { within: 120000 });
  check(!(await reply.locator(".error").count()), `the reply failed: ${await reply.innerText()}`);
  return reply;
}

const journeys = {
  async "sign-in"(ctx) {
    const page = await newPage(ctx.browser);
    await page.goto(URL_ + "/");
    await axe(page, "sign-in");
    await page.getByLabel("API key").fill("att_wrong_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").waitFor();
    await signIn(page, ctx.a.key);
    await page.getByRole("heading", { name: "Chat", level: 1 }).waitFor();
    await shot(page, "01-sign-in");
    ctx.page = page;
  },
  async "streamed chat"(ctx) {
    const { page } = ctx;
    const reply = await send(page, "Tell me one short fact about otters.");
    await reply.locator(".actions").waitFor();
    ctx.thread = await until("the thread id", () => page.evaluate(() => location.hash.split("/")[2]));
    await page.locator(`.thread-list a[data-thread="${ctx.thread}"]`).waitFor();
    await axe(page, "chat");
    await shot(page, "02-streamed-chat");
  },
  async "call me Captain"(ctx) {
    const { page } = ctx;
    await send(page, "Please call me Captain.");
    const notice = page.locator(".notice", { hasText: "Profile updated" });
    await notice.waitFor();
    check(/Captain/.test(await notice.innerText()), "the notice does not name the change");
    const reply = await send(page, "What should I eat for breakfast?");
    await reply.getByText("Why this answer").click();
    const prompt = reply.locator("pre.prompt");
    await prompt.waitFor();
    check((await prompt.innerText()).includes("Captain"), "the next reply's prompt does not say Captain");
    await shot(page, "03-captain-why");
    await notice.getByRole("button", { name: "Undo" }).click();
    await page.locator(".notice", { hasText: "Undone" }).waitFor();
    const profile = await call(`/v1/users/${ctx.a.id}/profile`, ctx.a.key);
    check(profile.json.preferred_name === null, `undo left ${profile.json.preferred_name}`);
  },
  async "vote and edit"(ctx) {
    const { page } = ctx;
    const reply = page.locator("article.turn.assistant").first();
    await reply.getByRole("button", { name: "Good reply" }).click();
    await until("the vote", async () => (await reply.getByRole("button", { name: "Good reply" }).getAttribute("aria-pressed")) === "true");
    await reply.getByRole("button", { name: "Edit" }).click();
    await reply.getByLabel("How the reply should have read").fill("Otters hold hands while they sleep so they do not drift apart.");
    await reply.getByRole("button", { name: "Save edit" }).click();
    await reply.getByText("Your edit is saved").waitFor();
    await shot(page, "04-vote-edit");
    const pairs = await until("a preference pair", async () => {
      const r = await call(`/v1/users/${ctx.a.id}/preference-pairs`, ctx.a.key);
      return r.json.total > 0 ? r.json : null;
    });
    check(pairs.data.some((p) => p.chosen.includes("hold hands")), "the pair does not hold the edit");
  },
  async "memory: find, source, delete"(ctx) {
    const { page } = ctx;
    await page.goto(`${URL_}/#/memory`);
    await page.getByRole("heading", { name: "Memory", level: 1 }).waitFor();
    await axe(page, "memory");
    const search = async () => {
      await page.getByRole("searchbox", { name: "Search" }).fill("otters");
      await page.getByRole("button", { name: "Search", exact: true }).click();
      await page.locator(".results p").first().waitFor();
      await page.waitForTimeout(200);
    };
    await search();
    const item = page.locator("li.memory", { hasText: "otters" }).first();
    await item.waitFor();
    const id = (await item.getAttribute("id")).slice(2);
    await shot(page, "05-memory-search");
    await item.locator("ul.sources a").first().click();
    await page.locator("article.turn.highlight").waitFor();
    check((await page.locator("article.turn.highlight").innerText()).includes("otters"), "the source turn is not shown");
    await shot(page, "05-memory-source");
    await page.goto(`${URL_}/#/memory`);
    await search();
    await page.locator(`#m-${id}`).getByRole("button", { name: /Delete memory/ }).click();
    await page.locator(`#m-${id}`).waitFor({ state: "detached" });
    await search();
    check(!(await page.locator(`#m-${id}`).count()), "the deleted memory is still found");
    const r = await call(`/v1/users/${ctx.a.id}/memories/${id}`, ctx.a.key);
    check(r.status === 404, `the deleted memory answers ${r.status}`);
  },
  async "temporary chat"(ctx) {
    const { page } = ctx;
    const counts = async () => {
      const threads = await call(`/v1/users/${ctx.a.id}/threads`, ctx.a.key);
      const memories = await call(`/v1/users/${ctx.a.id}/memories?limit=1`, ctx.a.key);
      const profile = await call(`/v1/users/${ctx.a.id}/profile`, ctx.a.key);
      return JSON.stringify([threads.json.total, memories.json.total, profile.json.version]);
    };
    await page.goto(`${URL_}/#/chat`);
    await page.getByRole("heading", { name: "Chat", level: 1 }).waitFor();
    const before = await counts();
    await page.getByRole("switch", { name: /Temporary chat/ }).check();
    const reply = await send(page, "Call me Admiral. My secret island is Tortuga.");
    await reply.getByText("temporary · not stored").waitFor();
    await shot(page, "06-temporary-chat");
    await page.waitForTimeout(1500); // anything queued would have been written by now
    const after = await counts();
    check(before === after, `a temporary chat wrote something: ${before} → ${after}`);
  },
  async "train and roll back"(ctx) {
    const { page } = ctx;
    const samples = Array.from({ length: 10 }, (_, i) => ({ text: `Ahoy matey, sample ${i}: the sea be calm and the rum be sweet, arr!` }));
    const up = await call(`/v1/users/${ctx.a.id}/samples`, ctx.a.key, { method: "POST", body: { samples } });
    check(up.status === 201, `samples: ${JSON.stringify(up.json)}`);
    await page.goto(`${URL_}/#/adapters`);
    await page.getByRole("heading", { name: "Adapters", level: 1 }).waitFor();
    await axe(page, "adapters");
    await page.getByLabel("Kind").selectOption("sft");
    await page.getByLabel("Max steps").fill("2");
    const started = Date.now();
    await page.getByRole("button", { name: "Train", exact: true }).click();
    const seen = new Set();
    const out = page.locator("form[aria-labelledby=train-title] p[aria-live]");
    await until("training to finish", async () => {
      const text = await out.innerText();
      const m = text.match(/: (queued|running|succeeded|failed), (\d+)%/);
      if (m) seen.add(`${m[1]} ${m[2]}%`);
      return /Training (finished|failed)/.test(text);
    }, { within: 240000, every: 250 });
    timings.push(`training job (sft, 2 steps) watched for ${((Date.now() - started) / 1000).toFixed(1)}s; progress seen: ${[...seen].join(", ")}`);
    check(/Training finished/.test(await out.innerText()), await out.innerText());
    check([...seen].some((s) => s.startsWith("running")), `no progress was shown: ${[...seen]}`);
    await page.locator("section.serving", { hasText: "user adapter" }).waitFor();
    await shot(page, "07-trained");
    await page.getByRole("button", { name: "Roll back" }).click();
    await page.locator("section.serving", { hasText: "base model" }).waitFor();
    const list = await call(`/v1/users/${ctx.a.id}/adapters`, ctx.a.key);
    check(list.json.serving.kind !== "user", `still served by ${list.json.serving.adapter}`);
    await shot(page, "08-rolled-back");
  },
  async "profile and account pages"(ctx) {
    const { page } = ctx;
    for (const name of ["profile", "account"]) {
      await page.goto(`${URL_}/#/${name}`);
      await page.getByRole("heading", { level: 1 }).first().waitFor();
      await page.locator("section.card, form.card").first().waitFor();
      await axe(page, name);
      await shot(page, `09-${name}`);
    }
  },
  async "another user cannot see the thread"(ctx) {
    const page = await newPage(ctx.browser);
    await signIn(page, ctx.b.key);
    await page.goto(`${URL_}/#/chat/${ctx.thread}`);
    await page.getByRole("heading", { name: "Thread not found" }).waitFor();
    check(!(await page.content()).includes("otters"), "user B sees user A's text");
    const direct = await call(`/v1/users/${ctx.a.id}/threads/${ctx.thread}`, ctx.b.key);
    check(direct.status === 404, `B's key on A's thread answers ${direct.status}`);
    await shot(page, "10-isolation");
    await page.context().close();
  },
  async admin(ctx) {
    const page = await newPage(ctx.browser);
    await signIn(page, ADMIN);
    await page.goto(`${URL_}/#/admin`);
    await page.getByRole("heading", { name: "Prompt templates" }).waitFor();
    await axe(page, "admin");
    await shot(page, "11-admin");
    await page.getByRole("button", { name: `View ${ctx.a.name}` }).click();
    await page.locator(".thread-list a").first().waitFor();
    check(await page.getByRole("textbox", { name: "Message", exact: true }).isDisabled(), "the admin key can type into a user's chat");
    await page.context().close();
  },
};

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
  });
  const ctx = { browser };
  for (const name of ["a", "b"]) {
    const r = await call("/v1/users", ADMIN, { method: "POST", body: { name: `web-${name}-${Date.now().toString(36)}` } });
    check(r.status === 201, `create user: ${JSON.stringify(r.json)}`);
    ctx[name] = { id: r.json.id, key: r.json.api_key, name: r.json.name };
  }
  const only = process.env.JOURNEYS ? process.env.JOURNEYS.split(",") : null;
  const all = Date.now();
  for (const [name, run] of Object.entries(journeys)) {
    if (only && !only.includes(name)) continue;
    const started = Date.now();
    try {
      await run(ctx);
      timings.push(`ok   ${name}: ${((Date.now() - started) / 1000).toFixed(1)}s`);
    } catch (err) {
      failures.push(`${name}: ${err.stack || err}`);
      timings.push(`FAIL ${name}: ${((Date.now() - started) / 1000).toFixed(1)}s`);
      if (ctx.page) await ctx.page.screenshot({ path: `${OUT}/FAILED-${name.replace(/\W+/g, "-")}.png`, fullPage: true }).catch(() => {});
    }
  }
  await browser.close();
  console.log(timings.join("\n"));
  console.log(`all journeys: ${((Date.now() - all) / 1000).toFixed(1)}s; screenshots in ${OUT}`);
  for (const n of notes) console.log(n);
  if (failures.length) {
    console.error(`\n${failures.length} failure(s):\n${failures.join("\n\n")}`);
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(err.stack || err);
  process.exit(1);
});

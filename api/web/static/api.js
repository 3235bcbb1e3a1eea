// The JSON API client: every call sends the signed-in key as `Authorization: Bearer`.

const KEY = "attune.key";

/** An error answer of the API, with its status and the message it gave. */
export class ApiError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param || null;
  }
}

/** The signed-in key (kept in sessionStorage: gone when the tab closes). */
export function getKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${getKey() || ""}`, ...extra };
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  let param = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      param = body.error.param;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, param);
}

/**
 * Call the API and return its JSON (null for 204).
 * @param {string} path - starts with /v1
 * @param {{method?: string, body?: any, key?: string}} [options]
 */
export async function api(path, { method = "GET", body, key } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "the server did not answer; check that `attune serve` is running");
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

/** `encodeURIComponent` for path segments. */
export const seg = encodeURIComponent;

/**
 * Stream a chat completion. Calls `onDelta(text)` per piece; resolves with the final
 * chunk's `attune` object and finish reason.
 * @param {object} body - a chat completions request (stream is set here)
 * @param {(text: string) => void} onDelta
 */
export async function streamChat(body, onDelta) {
  let response;
  try {
    response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ ...body, stream: true }),
    });
  } catch {
    throw new ApiError(0, "the server did not answer; check that `attune serve` is running");
  }
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let done = null;
  for (;;) {
    const { value, done: ended } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(500, chunk.error.message);
        const choice = (chunk.choices || [])[0];
        if (choice && choice.delta && choice.delta.content) onDelta(choice.delta.content);
        if (chunk.attune) done = { attune: chunk.attune, finish: choice ? choice.finish_reason : null };
      }
    }
    if (ended) break;
  }
  if (!done) throw new ApiError(500, "the reply ended before it was complete; try again");
  return done;
}

/**
 * Follow a job until it has finished; `onUpdate(job)` after every poll.
 * @returns {Promise<object>} the finished job
 */
export async function followJob(jobId, onUpdate, { every = 700, within = 15 * 60 * 1000 } = {}) {
  const started = Date.now();
  for (;;) {
    const job = await api(`/v1/jobs/${seg(jobId)}`);
    onUpdate(job);
    if (job.status === "succeeded" || job.status === "failed") return job;
    if (Date.now() - started > within) throw new ApiError(0, `job ${jobId} is still ${job.status}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

/** Offer `data` as a file download named `name`. */
export function download(name, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

/** Fetch a non-JSON answer (an HTML report) as text, with the key. */
export async function fetchText(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return response.text();
}

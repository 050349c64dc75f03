// The HTTP API as the page uses it: every call carries the token of this tab, kb's errors
// become ApiError with kb's message, and a 401 hands control back to the token field.
// URLs are relative to the page (/ui/ → ../v1/...), so the page works behind a proxy that
// serves kb under a path prefix.

const TOKEN_KEY = "kb.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error;
    super(error && error.message ? error.message : `the server answered ${status}`);
    this.status = status;
    this.kind = error ? error.kind : null;
  }
}

let unauthorized = () => {};

/** What to do when the server refuses the token (it is forgotten first). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function url(path, params) {
  const target = new URL(`../${path}`, document.baseURI);
  for (const [key, value] of Object.entries(params || {})) {
    if (value != null && value !== "") target.searchParams.set(key, value);
  }
  return target;
}

async function send(path, { method = "GET", params, json, form, accept = "application/json", signal } = {}) {
  const headers = { accept };
  const secret = token.get();
  if (secret) headers.authorization = `Bearer ${secret}`;
  let body;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser writes the multipart boundary
  }
  const response = await fetch(url(path, params), { method, headers, body, signal });
  if (!response.ok) {
    const error = new ApiError(response.status, await response.json().catch(() => null));
    if (response.status === 401) {
      token.clear();
      unauthorized(error.message);
    }
    throw error;
  }
  return response;
}

/** A JSON call: the answer's body, or ApiError. */
export async function api(path, options = {}) {
  const response = await send(path, options);
  return response.json();
}

/** A streamed call (server-sent events over a POST): yields {event, data} as they arrive. */
export async function* stream(path, json, signal) {
  const response = await send(path, { method: "POST", json, accept: "text/event-stream", signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      }
      yield { event, data: data ? JSON.parse(data) : null };
    }
  }
}

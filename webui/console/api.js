// The REST API, as integrators use it; the signed-in session's cookie stands
// in for a bearer token and every change carries the session's CSRF token.
let csrf = null;

export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.field = problem.field || null;
  }
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/console/api/")) window.dispatchEvent(new Event("signed-out"));
    throw new ApiProblem(response.status, data || {});
  }
  return data;
}

export const api = {
  get: (path) => call("GET", `/api/v1${path}`),
  post: (path, body) => call("POST", `/api/v1${path}`, body),
  patch: (path, body) => call("PATCH", `/api/v1${path}`, body),
  put: (path, body) => call("PUT", `/api/v1${path}`, body),
  del: (path) => call("DELETE", `/api/v1${path}`),
};

export async function currentSession() {
  try {
    csrf = (await call("GET", "/console/api/session")).csrf_token;
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

export async function signIn(password) {
  csrf = (await call("POST", "/console/api/session", { password })).csrf_token;
}

export async function signOut() {
  await call("DELETE", "/console/api/session");
  csrf = null;
}

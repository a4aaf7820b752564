/**
 * The page's REST calls: JSON both ways, the CSRF header on writes, a 401 sends the person
 * to the login page. Errors throw an Error with `status`. No side effects at import.
 */
export function createApi(config, { location = globalThis.location } = {}) {
  return async function api(url, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["X-CSRFToken"] = config.csrfToken;
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(url, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      // The session ended: back to the login page, then here.
      location.assign(`/accounts/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    if (!response.ok) {
      const error = new Error(`${method} ${url}: HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.status === 204 ? null : response.json();
  };
}

// Calling the server API from tests: JSON in and out, with or without the key.
export interface ApiAnswer {
  status: number;
  body: Record<string, unknown> & { error?: string; message?: string };
  headers: Headers;
}

export interface ApiCall {
  method?: string;
  body?: unknown;
  key?: string;
  headers?: Record<string, string>;
}

export async function callApi(base: string, path: string, call: ApiCall = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...call.headers };
  if (call.key !== undefined) headers.authorization = `Bearer ${call.key}`;
  let body: string | undefined;
  if (call.body !== undefined) {
    body = typeof call.body === "string" ? call.body : JSON.stringify(call.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(`${base}${path}`, { method: call.method ?? (call.body === undefined ? "GET" : "POST"), headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as ApiAnswer["body"]) : {}, headers: res.headers };
}

/** A client of one server: `api.post(path, body)`, `api.get(path)`, `api.del(path)`. */
export function apiClient(base: string, key?: string) {
  return {
    get: (path: string, headers?: Record<string, string>) => callApi(base, path, { key, headers }),
    post: (path: string, body: unknown = {}, headers?: Record<string, string>) => callApi(base, path, { body, key, headers }),
    del: (path: string) => callApi(base, path, { method: "DELETE", key }),
  };
}

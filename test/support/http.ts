// A tiny JSON client for the HTTP API over real sockets (Node's fetch).
export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T = any>(baseUrl: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(baseUrl + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('application/json')) parsed = JSON.parse(text);
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** An API client; with a token, every request carries `Authorization: Bearer <token>`. */
export function api(baseUrl: string, token?: string) {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return {
    get: <T = any>(path: string) => request<T>(baseUrl, 'GET', path, undefined, auth),
    post: <T = any>(path: string, body?: unknown) => request<T>(baseUrl, 'POST', path, body ?? {}, auth),
    patch: <T = any>(path: string, body: unknown) => request<T>(baseUrl, 'PATCH', path, body, auth),
    delete: <T = any>(path: string) => request<T>(baseUrl, 'DELETE', path, undefined, auth),
    /** Adds a host and returns its id, failing loudly when the server refuses. */
    async addHost(hostname: string, extra: Record<string, unknown> = {}): Promise<string> {
      const res = await request(baseUrl, 'POST', '/api/hosts', { hostname, ...extra }, auth);
      if (res.status !== 201) throw new Error(`addHost ${hostname}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.host.id as string;
    },
  };
}

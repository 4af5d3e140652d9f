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

export interface Session {
  cookie: string;
  csrf: string;
  /** Cookie, CSRF token and the server's own Origin: what a browser on the dashboard sends. */
  headers: Record<string, string>;
}

/** Logs in over HTTP as a browser would, failing loudly unless the server answers 200. */
export async function logInSession(baseUrl: string, username: string, password: string, extra: Record<string, unknown> = {}): Promise<Session> {
  const res = await request(baseUrl, 'POST', '/api/login', { username, password, ...extra });
  if (res.status !== 200) throw new Error(`login as ${username}: ${res.status} ${JSON.stringify(res.body)}`);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  return { cookie, csrf: res.body.csrf_token, headers: { cookie, 'x-csrf-token': res.body.csrf_token, origin: baseUrl } };
}

// A method + path router in which every route declares its whole access rule (src/protocol/api.ts)
// and, when it takes one, its body schema: the front door enforces both before a handler runs,
// so no handler can forget a check. 404 for unknown paths, 405 (with Allow) for known paths with
// another method; path parameters are decoded.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { API, type ApiRoute, type RouteSpec } from '../../protocol/api.js';
import { API_BODIES, type ApiBody, type BodyRule } from '../../protocol/api-schemas.js';
import type { Principal } from '../auth/roles.js';
import { HttpError } from './http-error.js';

export type Params = Record<string, string>;

export interface RouteContext<B = unknown> {
  req: IncomingMessage;
  res: ServerResponse;
  params: Params;
  /** The body parsed by the route's schema; undefined for a route without one. */
  body: B;
  /** Who is calling; null only on public routes. */
  principal: Principal | null;
  /** The client's address (forwarded headers honoured only from trusted proxies). */
  address: string;
  /** Whether the request came over TLS. */
  secure: boolean;
}

export type Handler<B = unknown> = (ctx: RouteContext<B>) => Promise<void> | void;

export interface Route extends RouteSpec {
  /** The API route name, or a name of the server's own for routes outside the API. */
  name: string;
  body: BodyRule | null;
  handler: Handler<any>;
}

interface CompiledRoute extends Route {
  pattern: RegExp;
  names: string[];
}

export class Router {
  private readonly table: CompiledRoute[] = [];

  /** A route of the API contract: its method, path and access from API, its body from API_BODIES. */
  api<N extends ApiRoute>(name: N, handler: Handler<ApiBody<N>>): this {
    const body = (API_BODIES as Partial<Record<ApiRoute, BodyRule>>)[name] ?? null;
    return this.add(name, API[name], handler as Handler<any>, body);
  }

  /** A route outside the API contract (the dashboard's pages and assets). */
  add(name: string, spec: RouteSpec, handler: Handler<any>, body: BodyRule | null = null): this {
    if (this.table.some((r) => r.method === spec.method && r.path === spec.path)) throw new TypeError(`route ${spec.method} ${spec.path} registered twice`);
    const names: string[] = [];
    const source = spec.path.replace(/:([a-z_]+)/g, (_match, param: string) => {
      names.push(param);
      return '([^/]+)';
    });
    this.table.push({ ...spec, name, body, handler, pattern: new RegExp(`^${source}$`), names });
    return this;
  }

  /** Every route, for the front door's tests and the docs. */
  get routes(): readonly Route[] {
    return this.table;
  }

  /** Finds the route for a request; throws 404 or 405. */
  match(method: string, pathname: string): { route: Route; params: Params } {
    const allowed: string[] = [];
    for (const route of this.table) {
      const found = route.pattern.exec(pathname);
      if (!found) continue;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) {
        allowed.push(route.method);
        continue;
      }
      const params: Params = {};
      route.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(found[i + 1]!);
        } catch {
          throw new HttpError(400, 'invalid_request', `path parameter ${name} is not valid percent-encoding`);
        }
      });
      return { route, params };
    }
    if (allowed.length > 0) {
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${allowed.join(', ')}`, { allow: allowed.join(', ') });
    }
    throw new HttpError(404, 'not_found', `no route for ${method} ${pathname}`);
  }
}

// A minimal method + path router: patterns like /api/hosts/:id, parameters decoded, 404 for
// unknown paths and 405 (with Allow) for known paths with another method. Every route names
// who may call it, so no route can be added without deciding its access.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Action, Principal } from '../auth/roles.js';
import { HttpError } from './http-error.js';

export type Params = Record<string, string>;

export interface RequestContext {
  /** Who is calling; null only on public routes. */
  principal: Principal | null;
  /** The client's address (forwarded headers honoured only from trusted proxies). */
  address: string;
  /** Whether the request came over TLS. */
  secure: boolean;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, params: Params, ctx: RequestContext) => Promise<void> | void;

/**
 * `public`: anyone; `authenticated`: any valid session or token; an Action: the caller must be
 * allowed it (`report` routes check the host themselves, see `authorize`).
 */
export type Access = 'public' | 'authenticated' | Action;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  access: Access;
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  on(method: string, path: string, access: Access, handler: Handler): this {
    const names: string[] = [];
    const source = path.replace(/:([a-z_]+)/g, (_match, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    this.routes.push({ method, pattern: new RegExp(`^${source}$`), names, access, handler });
    return this;
  }

  /** Finds the handler for a request; throws 404 or 405. */
  match(method: string, pathname: string): { handler: Handler; params: Params; access: Access } {
    const allowed: string[] = [];
    for (const route of this.routes) {
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
      return { handler: route.handler, params, access: route.access };
    }
    if (allowed.length > 0) {
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${allowed.join(', ')}`, { allow: allowed.join(', ') });
    }
    throw new HttpError(404, 'not_found', `no route for ${method} ${pathname}`);
  }
}

// Who may do what. Users are viewers, operators or admins; API tokens carry one of those roles
// or are agent tokens bound to one host. Every request and socket is checked here, on the
// server, whatever the UI shows.

export const USER_ROLES = ['viewer', 'operator', 'admin'] as const;
export const TOKEN_ROLES = ['viewer', 'operator', 'admin', 'agent'] as const;
export type UserRole = (typeof USER_ROLES)[number];
export type TokenRole = (typeof TOKEN_ROLES)[number];

/**
 * - `read`: see the state and logs (viewer and up);
 * - `operate`: start ops and pipelines, add and remove hosts (operator and up);
 * - `report`: what an agent sends about one host: heartbeats, command output and results,
 *   events (operator and up, or an agent token for that host only);
 * - `admin`: manage users and tokens.
 */
export type Action = 'read' | 'operate' | 'report' | 'admin';

export type Principal =
  | { kind: 'session'; user: string; role: UserRole; sessionId: string; csrfToken: string }
  | { kind: 'token'; tokenId: string; name: string; role: TokenRole; hostId: string | null };

const RANK: Record<UserRole, number> = { viewer: 1, operator: 2, admin: 3 };
const NEEDS: Record<Exclude<Action, 'report'>, number> = { read: 1, operate: 2, admin: 3 };

/** Whether `principal` may perform `action`; `hostId` is the host a report is about. */
export function can(principal: Principal, action: Action, hostId?: string | null): boolean {
  if (principal.role === 'agent') {
    return action === 'report' && principal.kind === 'token' && principal.hostId !== null && hostId === principal.hostId;
  }
  const rank = RANK[principal.role];
  return action === 'report' ? rank >= RANK.operator : rank >= NEEDS[action];
}

/** A name for logs and the event log's `actor`. */
export function actorOf(principal: Principal): string {
  return principal.kind === 'session' ? principal.user : `token:${principal.name}`;
}

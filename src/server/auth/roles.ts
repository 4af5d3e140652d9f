// Who may do what. The roles and actions are the protocol's (src/protocol/constants.ts); this is
// the rule over them, checked on the server for every request and socket, whatever the UI shows.
import type { Action, TokenRole, UserRole } from '../../protocol/constants.js';

export { ACTIONS, TOKEN_ROLES, USER_ROLES, type Action, type TokenRole, type UserRole } from '../../protocol/constants.js';

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

/** Whether `principal` may report for some host at all (an agent: its own; an operator: any). */
export function mayReport(principal: Principal): boolean {
  return principal.role === 'agent' ? principal.kind === 'token' && principal.hostId !== null : can(principal, 'report');
}

/** A name for logs and the event log's `actor`. */
export function actorOf(principal: Principal): string {
  return principal.kind === 'session' ? principal.user : `token:${principal.name}`;
}

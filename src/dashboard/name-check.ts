// Form fields for names check the same rule the server does (src/protocol/names.ts), so the
// browser refuses a bad name before it is sent, with the rule as its message.
import { DISPLAY_NAME_RULE, HOSTNAME_RULE, isDisplayName, isHostname, isUserName, USER_NAME_RULE } from '../protocol/names.js';

type InputEvent = { currentTarget: HTMLInputElement };

function checkedBy(valid: (name: string) => boolean, what: string, rule: string): (event: InputEvent) => void {
  return ({ currentTarget }) => currentTarget.setCustomValidity(currentTarget.value === '' || valid(currentTarget.value.trim()) ? '' : `${what} ${rule}.`);
}

export const checkHostname = checkedBy(isHostname, 'A hostname', HOSTNAME_RULE);
export const checkUserName = checkedBy(isUserName, 'A user name', USER_NAME_RULE);
export const checkDisplayName = checkedBy(isDisplayName, 'A name', DISPLAY_NAME_RULE);

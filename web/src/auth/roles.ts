import type { Role } from '../api/types';

const ROLE_LABEL: Record<Role, string> = { owner: 'Owner', admin: 'Admin', viewer: 'Viewer' };

function isRole(value: string): value is Role {
  return Object.hasOwn(ROLE_LABEL, value);
}

/** Display name of a role; the API types roles on members, invites and `me` as plain strings. */
export function roleLabel(role: string): string {
  return isRole(role) ? ROLE_LABEL[role] : role;
}

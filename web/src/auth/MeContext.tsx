import { createContext, useContext } from 'react';
import type { Me } from '../api/types';

export const MeContext = createContext<Me | null>(null);

/** The signed-in identity; available on every page rendered inside the app shell. */
export function useMe(): Me {
  const me = useContext(MeContext);
  if (me === null) throw new Error('useMe must be used inside the app shell');
  return me;
}

export function canManageOrg(me: Me): boolean {
  return me.role === 'owner' || me.role === 'admin';
}

/** Platform operators (not an organization role): they manage platform-wide settings such as the risk model. */
export function isSuperAdmin(me: Me): boolean {
  return me.platform_role === 'super_admin';
}

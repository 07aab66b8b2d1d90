// React Query keys shared between the screens that read the data and the live event stream
// that invalidates it.

/** Linked accounts; prefix of every per-account key. */
export const accountsKey = ['accounts'] as const;
export const scanKey = (accountId: string) => ['accounts', accountId, 'scan'] as const;

/** Prefix of everything discovery produces: clusters, instances, waste. */
export const inventoryKey = ['inventory'] as const;

// React Query keys shared between the screens that read the data and the live event stream
// that invalidates it.

/** Linked accounts; prefix of every per-account key. */
export const accountsKey = ['accounts'] as const;
export const scanKey = (accountId: string) => ['accounts', accountId, 'scan'] as const;

/** Prefix of everything discovery produces: clusters, instances, waste. */
export const inventoryKey = ['inventory'] as const;

/**
 * Dashboard aggregates. Under the inventory prefix on purpose: every live event that
 * invalidates the inventory (discovery finished, inventory changed, spot interruptions)
 * refreshes the dashboard too.
 */
export const dashboardKey = [...inventoryKey, 'dashboard'] as const;

/** Background jobs ("Optimize Now"): the org's list and each job by id. */
export const jobsKey = ['jobs'] as const;
export const jobKey = (id: string) => ['jobs', id] as const;
/** A batch job's items (waste clean-up). Under `jobKey`: a finished job's refresh re-reads them; live `job.item` events update them. */
export const jobItemsKey = (id: string) => ['jobs', id, 'items'] as const;
/** Actions a running job reported through live `job.action` events, by index. Not under `jobsKey`. */
export const jobActionsKey = (id: string) => ['job-actions', id] as const;
/** A cluster's optimization policy. */
export const policyKey = (clusterId: string) => ['policy', clusterId] as const;
/** A cluster's stored policy versions (newest first). Under `policyKey`: refreshing the policy refreshes them. */
export const policyVersionsKey = (clusterId: string) => ['policy', clusterId, 'versions'] as const;
/** A cluster's agent status; prefix of its agent commands. Live `agent.heartbeat` events invalidate it. */
export const agentKey = (clusterId: string) => ['agent', clusterId] as const;
export const agentCommandsKey = (clusterId: string) => ['agent', clusterId, 'commands'] as const;
/** When each cluster's last `agent.heartbeat` event arrived in this tab, by cluster id (ISO time). */
export const agentHeartbeatsKey = ['agent-heartbeats'] as const;
/** The organization's node templates; prefix of each template by id. */
export const templatesKey = ['templates'] as const;
export const templateKey = (id: string) => ['templates', id] as const;
/** A draft template's live cost estimate, by its spec. Not under `templatesKey`: saving a template does not change prices. */
export const templateEstimateKey = (spec: string) => ['template-estimate', spec] as const;

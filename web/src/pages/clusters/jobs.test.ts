import { keepReasonLabel, keptReasonCounts, nodeDecisionBadge, nodeDecisionLabel, nodeDecisionSummary, parsePlan, sortNodeDecisions, strategyLabel, type PlanNode } from './jobs';

const node = (name: string, decision: string, extra: Partial<PlanNode> = {}): PlanNode => ({
  node: name,
  decision,
  by: [],
  saving_hourly: 0,
  utilization: 0.5,
  reason: '',
  ...extra,
});

describe('keepReasonLabel', () => {
  it('names every reason the planner gives for keeping a node', () => {
    expect(
      [
        'manual_override',
        'unmanaged',
        'cordoned',
        'not_ready',
        'do_not_disrupt',
        'maintenance_mode',
        'stabilization_window',
        'pdb',
        'unplaceable',
        'method_delete_empty',
        'in_target_fleet',
        'well_utilized',
        'pods_do_not_fit',
        'saving_below_threshold',
        'budget_exhausted',
      ].map(keepReasonLabel),
    ).toEqual([
      'forced on-demand (manual override)',
      'unmanaged',
      'cordoned',
      'not Ready',
      'do-not-disrupt',
      'maintenance mode',
      'inside stabilization window',
      'PodDisruptionBudget',
      'unplaceable pod',
      'delete-empty method',
      'part of target fleet',
      'well utilized',
      'pods do not fit elsewhere',
      'saving below threshold',
      'disruption budget exhausted',
    ]);
  });

  it('spells out a code it does not know and says when none was given', () => {
    expect(keepReasonLabel('gpu_reserved')).toBe('gpu reserved');
    expect(keepReasonLabel(undefined)).toBe('no reason given');
  });
});

describe('nodeDecisionLabel', () => {
  it('labels each decision, kept nodes neutral', () => {
    expect(['kept', 'deleted_empty', 'drained', 'replaced'].map(nodeDecisionLabel)).toEqual(['Kept', 'Delete (empty)', 'Drain & delete', 'Replace']);
    expect(nodeDecisionBadge('kept').tone).toBe('neutral');
    expect(nodeDecisionBadge('deleted_empty').tone).toBe('success');
    expect(nodeDecisionBadge('drained').tone).toBe('success');
    expect(nodeDecisionBadge('replaced').tone).toBe('info');
    expect(nodeDecisionBadge('hibernated')).toEqual({ label: 'hibernated', tone: 'neutral' });
  });
});

describe('strategyLabel', () => {
  it('describes the strategy in words', () => {
    expect(strategyLabel('target')).toMatch(/cheapest set of nodes/);
    expect(strategyLabel('incremental')).toMatch(/delete empty nodes/);
    expect(strategyLabel('none')).toMatch(/no node can be changed/);
    expect(strategyLabel(undefined)).toBeUndefined();
    expect(strategyLabel('quantum')).toBeUndefined();
  });
});

describe('node decisions', () => {
  const nodes = [
    node('b-kept', 'kept', { why: 'pdb' }),
    node('z-replaced', 'replaced', { wave: 0 }),
    node('a-kept', 'kept', { why: 'well_utilized' }),
    node('c-kept', 'kept', { why: 'well_utilized' }),
    node('y-drained', 'drained', { wave: 1 }),
    node('a-empty', 'deleted_empty', { wave: 1 }),
  ];

  it('puts changed nodes first by wave, then kept nodes by name', () => {
    expect(sortNodeDecisions(nodes).map((n) => n.node)).toEqual(['z-replaced', 'a-empty', 'y-drained', 'a-kept', 'b-kept', 'c-kept']);
  });

  it('summarizes the changes, the waves and the budget', () => {
    expect(nodeDecisionSummary({ nodes, waves: 2, disruption_budget: 1 })).toBe('6 nodes: 3 change in 2 waves (at most 1 node at a time), 3 kept.');
    // Waves counted from the nodes when the plan does not say; no budget, no parenthesis.
    expect(nodeDecisionSummary({ nodes })).toBe('6 nodes: 3 change in 2 waves, 3 kept.');
    expect(nodeDecisionSummary({ nodes: [nodes[0] as PlanNode], waves: 0, disruption_budget: 1 })).toBe('1 node: it is kept.');
    expect(nodeDecisionSummary({ nodes: [nodes[0] as PlanNode, nodes[2] as PlanNode] })).toBe('2 nodes: all are kept.');
  });

  it('counts kept nodes by reason, most frequent first', () => {
    expect(keptReasonCounts(nodes)).toEqual([
      { label: 'well utilized', count: 2 },
      { label: 'PodDisruptionBudget', count: 1 },
    ]);
  });
});

describe('parsePlan', () => {
  it('reads the planner fields', () => {
    const plan = parsePlan({
      version: 1,
      actions: [],
      blocked: [],
      expected_monthly_savings: 12,
      strategy: 'target',
      disruption_budget: 2,
      waves: 1,
      nodes: [{ node: 'n1', decision: 'replaced', wave: 0, by: ['new-1'], risk: 0.04, saving_hourly: 0.1, utilization: 0.2, reason: 'cheaper' }, { decision: 'kept' }],
      costs: { current_hourly: 1, planned_hourly: 0.9, saving_hourly: 0.1, saving_monthly: 73, lower_bound_hourly: 0.85, gap: 0.05, objective_hourly: 0.92, ffd_objective_hourly: 0.95, lower_bound_valid: true },
      warnings: ['payments: only 1 of the required 2 pods can run on on-demand', 7],
      source: 'agent',
    });
    expect(plan).toMatchObject({ strategy: 'target', disruption_budget: 2, waves: 1, source: 'agent', warnings: ['payments: only 1 of the required 2 pods can run on on-demand'] });
    expect(plan?.nodes).toEqual([{ node: 'n1', decision: 'replaced', why: undefined, wave: 0, by: ['new-1'], risk: 0.04, saving_hourly: 0.1, utilization: 0.2, reason: 'cheaper' }]);
    expect(plan?.costs).toMatchObject({ current_hourly: 1, planned_hourly: 0.9, lower_bound_valid: true });
  });

  it('tolerates an older plan without them', () => {
    const plan = parsePlan({ version: 1, actions: [], blocked: [], expected_monthly_savings: 0 });
    expect(plan).toMatchObject({ nodes: [], warnings: [], strategy: undefined, costs: undefined, waves: undefined, disruption_budget: undefined });
  });
});

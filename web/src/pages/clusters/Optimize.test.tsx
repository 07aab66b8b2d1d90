import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Job, Role } from '../../api/types';
import { apiError, json, makeCluster, makeInstance, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import type { ClusterPolicy } from './policy';

const policy: ClusterPolicy = {
  aggressiveness: 'balanced',
  method: 'replace_and_move',
  excluded_namespaces: ['kube-system'],
  stabilization_window_secs: 600,
  template: {
    allowed_families: [],
    architectures: [],
    excluded_sizes: [],
    capacity_type: 'spot',
    strategy: 'capacity_optimized',
    allow_burstable: false,
    on_demand_fallback: true,
  },
  dry_run: false,
  maintenance_mode: false,
  rightsize_percentile: 'p95',
  rightsize_headroom: 0.2,
  drain_timeout_secs: 300,
  disruption_budget: { max_percent: 10, max_nodes: null, max_waves: null },
  on_demand_minimums: [{ namespace: 'payments', selector: { app: 'api' }, percent: 50 }],
  risk_premium: 0.5,
};

const moveToSpot = (target: string, savings: number) => ({
  kind: 'move_to_spot',
  target,
  reason: `on-demand → spot for ${target}`,
  expected_monthly_savings: savings,
  destination: { instance_type: 'm5a.2xlarge', lifecycle: 'spot', az: 'us-east-1a', hourly_price: 0.079 },
  receivers: [],
  extra_destinations: [],
});

const plan = {
  version: 1,
  generated_at: 1714557600,
  actions: [moveToSpot('ip-10-0-1-1.ec2.internal', 82.43), moveToSpot('ip-10-0-1-2.ec2.internal', 67.83)],
  blocked: [{ action: { kind: 'drain_and_delete_node', target: 'ip-10-0-1-9.ec2.internal', reason: 'underused', expected_monthly_savings: 40, receivers: [], extra_destinations: [] }, reason: 'a PodDisruptionBudget allows no eviction' }],
  expected_monthly_savings: 150.26,
  // How the server serves a job planned before per-node decisions existed.
  nodes: [],
  warnings: [],
};

function makeJob(overrides: Partial<Job> = {}): Job {
  return {
    id: 'job-1',
    kind: 'optimize',
    target_id: 'c-1',
    status: 'queued',
    progress: 0,
    dry_run: true,
    safe_mode: false,
    created_at: '2024-05-01T10:00:00Z',
    ...overrides,
  };
}

const runningJob = makeJob({ status: 'running', progress: 40, message: 'plan ready: 2 actions, 1 blocked', plan, started_at: '2024-05-01T10:00:01Z' });
const dryRunDone = makeJob({
  status: 'succeeded',
  progress: 100,
  message: 'dry run: 2 actions would execute, $150.26/month expected',
  plan,
  started_at: '2024-05-01T10:00:01Z',
  finished_at: '2024-05-01T10:00:05Z',
  result: {
    mode: 'dry_run',
    executed: plan.actions.map((action, index) => ({ ...action, index, status: 'would_execute', launched: [], terminated: `i-${index}` })),
    not_run: [],
    expected_monthly_savings: 150.26,
    realised_monthly_savings: 0,
  },
});

type Handlers = Parameters<typeof mockApi>[0];

/** A PATCH answered as the server does: the body's fields laid over the stored policy. */
async function patched(request: Request) {
  const body = (await request.json()) as Partial<ClusterPolicy>;
  return json({
    ...policy,
    ...body,
    template: { ...policy.template, ...body.template },
    disruption_budget: { ...policy.disruption_budget, ...body.disruption_budget },
  });
}

function setup(role: Role = 'owner', handlers: Handlers = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/clusters': () => json({ items: [makeCluster()], total_monthly_run_rate: 2000 }),
    'GET /api/clusters/c-1': () =>
      json({
        cluster: makeCluster(),
        node_groups: [],
        nodes: [
          makeInstance({ interruption_probability: 0.031, risk_band: 'SAFE', risk_model: 'shipped:risk-v1' }),
          makeInstance({ id: 'inst-2', instance_id: 'i-0def456', lifecycle: 'on-demand' }),
        ],
      }),
    'GET /api/clusters/c-1/policy': () => json(policy),
    'GET /api/jobs': () => json({ items: [] }),
    ...handlers,
  });
}

describe('Optimize Now', () => {
  it('queues a dry run, follows the job and lists the actions that would execute', async () => {
    const polls = [runningJob, dryRunDone];
    const { calls } = setup('owner', {
      'POST /api/clusters/c-1/optimize': () => json(makeJob(), { status: 202 }),
      'GET /api/jobs/job-1': () => json(polls.length > 1 ? polls.shift() : polls[0]),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    await user.click(await screen.findByRole('button', { name: 'Optimize Now' }));
    const dialog = screen.getByRole('dialog', { name: 'Optimize prod-eks' });
    const dryRun = within(dialog).getByRole('checkbox', { name: 'Dry run (plan only, change nothing)' });
    expect(dryRun).toHaveFocus();
    expect(dryRun).not.toBeChecked();
    await user.click(dryRun);
    await user.click(within(dialog).getByRole('button', { name: 'Start dry run' }));

    const panel = await screen.findByRole('region', { name: 'Optimization job' });
    expect(calls.find((call) => call.method === 'POST')?.body).toEqual({ dry_run: true });
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(within(panel).getByText('Dry run', { selector: '.badge' })).toBeInTheDocument();

    // Polled every second: running with the plan, then finished with the result.
    expect(await within(panel).findByText('plan ready: 2 actions, 1 blocked', {}, { timeout: 3000 })).toBeInTheDocument();
    expect(within(panel).getByRole('progressbar', { name: 'Job progress' })).toHaveAttribute('value', '40');
    expect(await within(panel).findByText('Succeeded', {}, { timeout: 3000 })).toBeInTheDocument();
    expect(within(panel).getByRole('progressbar', { name: 'Job progress' })).toHaveAttribute('value', '100');

    const actions = within(panel).getByRole('table', { name: 'Planned actions' });
    const rows = within(actions).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent('Move to spot');
    expect(rows[0]).toHaveTextContent('ip-10-0-1-1.ec2.internal');
    expect(rows[0]).toHaveTextContent('m5a.2xlarge');
    expect(rows[0]).toHaveTextContent('Spot · us-east-1a');
    expect(rows[0]).toHaveTextContent('$82.43');
    for (const row of rows) expect(within(row).getByText('Would execute')).toHaveClass('badge');

    const blocked = within(panel).getByRole('list', { name: 'Blocked actions (1)' });
    expect(blocked).toHaveTextContent('Drain and delete node');
    expect(blocked).toHaveTextContent('a PodDisruptionBudget allows no eviction');
    expect(within(panel).getByText('$150.26')).toBeInTheDocument(); // expected
    expect(within(panel).getByText('dry run: nothing was changed')).toBeInTheDocument();

    // One completion toast; the job's URL survives a reload.
    expect(await screen.findByText('Dry run finished: 2 actions would execute, $150.26/month expected')).toBeInTheDocument();
    await waitFor(() => expect(calls.filter((call) => call.url.pathname === '/api/jobs/job-1').length).toBe(2));
  });

  it('shows the failure, the failed action and the actions that did not run', async () => {
    const failed = makeJob({
      id: 'job-2',
      status: 'failed',
      progress: 100,
      dry_run: false,
      message: 'action 1 of 2 failed: insufficient capacity',
      plan,
      finished_at: '2024-05-01T10:00:09Z',
      result: {
        mode: 'execute',
        executed: [],
        failed: { index: 0, kind: 'move_to_spot', target: 'ip-10-0-1-1.ec2.internal', error: 'insufficient capacity', step: 'launch' },
        not_run: [{ kind: 'move_to_spot', target: 'ip-10-0-1-2.ec2.internal' }],
        realised_monthly_savings: 0,
      },
    });
    setup('owner', { 'GET /api/jobs/job-2': () => json(failed), 'GET /api/jobs': () => json({ items: [failed] }) });
    renderApp('/clusters/c-1?job=job-2');

    const panel = await screen.findByRole('region', { name: 'Optimization job' });
    const alert = await within(panel).findByRole('alert');
    expect(alert).toHaveTextContent('action 1 of 2 failed: insufficient capacity');
    expect(alert).toHaveTextContent('1 planned action did not run: Move to spot ip-10-0-1-2.ec2.internal');
    const rows = within(within(panel).getByRole('table', { name: 'Planned actions' })).getAllByRole('row').slice(1);
    expect(within(rows[0] as HTMLElement).getByText('Failed')).toHaveClass('badge--danger');
    expect(rows[0]).toHaveTextContent('launch: insufficient capacity');
    expect(within(rows[1] as HTMLElement).getByText('Not run')).toHaveClass('badge--warning');

    // The jobs card lists it; a job that was already over does not toast.
    const jobs = screen.getByRole('table', { name: 'Recent jobs' });
    expect(within(jobs).getByText('Failed')).toBeInTheDocument();
    expect(screen.queryByText(/Optimization failed/)).not.toBeInTheDocument();
  });

  it('shows applied actions and the realised savings of an executed job', async () => {
    const executed = makeJob({
      id: 'job-3',
      status: 'succeeded',
      progress: 100,
      dry_run: false,
      message: '2 actions executed, $150.26/month saved',
      plan,
      result: {
        mode: 'execute',
        executed: [
          {
            ...plan.actions[0],
            index: 0,
            status: 'applied',
            launched: ['i-new1'],
            terminated: 'i-old1',
            steps: [
              { step: 'launch' },
              { step: 'cordon', ok: true },
              { step: 'ready', nodes: ['ip-10-0-9-9'] },
              { step: 'drain', ok: true, evictions: [{ pod: 'shop/a', outcome: 'evicted' }, { pod: 'shop/b', outcome: 'evicted' }, { pod: 'kube-system/aws-node-x', outcome: 'skipped_daemonset' }] },
              { step: 'delete_node', ok: true },
              { step: 'terminate' },
            ],
          },
          { ...plan.actions[1], index: 1, status: 'applied', launched: ['i-new2'], terminated: 'i-old2', fallback: 'spot capacity is exhausted; fell back to on-demand' },
        ],
        not_run: [],
        expected_monthly_savings: 150.26,
        realised_monthly_savings: 150.26,
      },
    });
    setup('owner', { 'GET /api/jobs/job-3': () => json(executed), 'GET /api/jobs': () => json({ items: [executed] }) });
    const user = userEvent.setup();
    renderApp('/clusters/c-1?job=job-3');

    const panel = await screen.findByRole('region', { name: 'Optimization job' });
    const realised = (await within(panel).findByText('Realised savings')).closest('.stat') as HTMLElement;
    expect(realised).toHaveTextContent('$150.26');
    expect(within(panel).getAllByText('Applied')).toHaveLength(2);
    expect(within(panel).getByText('spot capacity is exhausted; fell back to on-demand')).toBeInTheDocument();
    // How the node was retired through the agent, in order.
    const steps = within(panel).getByRole('list', { name: 'Steps' });
    expect(within(steps).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      'launch',
      'cordon',
      'ready',
      'drain (2 evicted)',
      'delete node',
      'terminate',
    ]);
    expect(within(screen.getByRole('table', { name: 'Recent jobs' })).getByText('$150.26 realised')).toBeInTheDocument();

    await user.click(within(panel).getByRole('button', { name: 'Close job panel' }));
    expect(screen.queryByRole('region', { name: 'Optimization job' })).not.toBeInTheDocument();
    await user.click(screen.getByRole('row', { name: /Optimization queued .* Succeeded, open job/ }));
    expect(await screen.findByRole('region', { name: 'Optimization job' })).toBeInTheDocument();
  });

  it('cancels a running job: it stops before its next action and says what did not run', async () => {
    const requested = { ...runningJob, dry_run: false, cancel_requested_at: '2024-05-01T10:00:03Z' };
    const cancelled = makeJob({
      status: 'cancelled',
      progress: 100,
      dry_run: false,
      message: 'cancelled: 1 of 2 actions ran; the rest did not run',
      plan,
      cancel_requested_at: '2024-05-01T10:00:03Z',
      finished_at: '2024-05-01T10:00:06Z',
      result: { mode: 'execute', executed: [], not_run: [{ kind: 'move_to_spot', target: 'ip-10-0-1-2.ec2.internal' }], realised_monthly_savings: 0 },
    });
    let state: Job = { ...runningJob, dry_run: false };
    const { calls } = setup('owner', {
      'GET /api/jobs/job-1': () => json(state),
      'POST /api/jobs/job-1/cancel': () => {
        state = requested;
        return json(requested);
      },
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1?job=job-1');
    const panel = await screen.findByRole('region', { name: 'Optimization job' });
    await user.click(await within(panel).findByRole('button', { name: 'Cancel job' }));
    expect(calls.some((call) => call.method === 'POST' && call.url.pathname === '/api/jobs/job-1/cancel')).toBe(true);
    expect(await within(panel).findByRole('button', { name: 'Cancelling…' })).toBeDisabled();
    state = cancelled;
    const note = await within(panel).findByText('The job was cancelled', {}, { timeout: 3000 });
    expect(note.closest('.callout')).toHaveTextContent('1 planned action did not run; actions already taken stay taken.');
    expect(within(panel).getByText('Cancelled', { selector: '.badge' })).toBeInTheDocument();
    expect(within(panel).queryByRole('button', { name: /Cancel/ })).not.toBeInTheDocument();
  });

  it('does not offer cancel to viewers', async () => {
    setup('viewer', { 'GET /api/jobs/job-1': () => json(runningJob) });
    renderApp('/clusters/c-1?job=job-1');
    const panel = await screen.findByRole('region', { name: 'Optimization job' });
    expect(await within(panel).findByText('plan ready: 2 actions, 1 blocked')).toBeInTheDocument();
    expect(within(panel).queryByRole('button', { name: 'Cancel job' })).not.toBeInTheDocument();
  });

  it('reports a refused job in the dialog', async () => {
    setup('admin', { 'POST /api/clusters/c-1/optimize': () => apiError(409, 'conflict', 'An optimization of this cluster is already running.') });
    const user = userEvent.setup();
    renderApp('/clusters/c-1?optimize=1');

    const dialog = await screen.findByRole('dialog', { name: 'Optimize prod-eks' });
    await user.click(within(dialog).getByRole('button', { name: 'Start optimization' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('An optimization of this cluster is already running.');
  });

  it('shows the risk band with its probability for spot nodes', async () => {
    setup('viewer');
    renderApp('/clusters/c-1');

    const nodes = await screen.findByRole('table', { name: 'Nodes' });
    const spot = within(nodes).getByRole('row', { name: /i-0abc123/ });
    expect(within(spot).getByText('SAFE')).toHaveClass('badge--success');
    expect(within(spot).getByText('SAFE')).toHaveTextContent('Interruption risk SAFE 3%');
    const onDemand = within(nodes).getByRole('row', { name: /i-0def456/ });
    expect(within(onDemand).queryByText('SAFE')).not.toBeInTheDocument();
  });

  it('hides Optimize Now from viewers and shows them the policy read-only', async () => {
    setup('viewer');
    renderApp('/clusters/c-1?optimize=1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    expect(screen.queryByRole('button', { name: 'Optimize Now' })).not.toBeInTheDocument();
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(within(form).getByText('Only owners and admins can change the policy.')).toBeInTheDocument();
    expect(within(form).getByLabelText('Aggressiveness')).toBeDisabled();
    expect(within(form).queryByRole('button', { name: 'Save policy' })).not.toBeInTheDocument();
    expect(screen.getByText('No optimization jobs for this cluster yet.')).toBeInTheDocument();
  });
});

describe('Node decisions', () => {
  const planned = {
    ...plan,
    strategy: 'target',
    disruption_budget: 1,
    waves: 1,
    source: 'agent',
    nodes: [
      {
        node: 'ip-10-0-1-7.ec2.internal',
        decision: 'kept',
        why: 'stabilization_window',
        by: [],
        saving_hourly: 0,
        utilization: 0.12,
        reason: 'launched 4 minutes ago, inside the 10-minute stabilization window',
      },
      {
        node: 'ip-10-0-1-9.ec2.internal',
        decision: 'kept',
        why: 'pdb',
        by: [],
        saving_hourly: 0,
        utilization: 0.31,
        reason: 'PodDisruptionBudget shop/api allows no eviction',
      },
      {
        node: 'ip-10-0-1-1.ec2.internal',
        decision: 'replaced',
        wave: 0,
        by: ['new-m5a-2xlarge-1'],
        risk: 0.03,
        saving_hourly: 0.1129,
        utilization: 0.42,
        reason: 'its pods fit on a cheaper spot m5a.2xlarge',
      },
    ],
    costs: {
      current_hourly: 1.2,
      planned_hourly: 1.0871,
      saving_hourly: 0.1129,
      saving_monthly: 82.42,
      lower_bound_hourly: 1.05,
      gap: 0.02,
      objective_hourly: 1.09,
      ffd_objective_hourly: 1.1,
      lower_bound_valid: true,
    },
    warnings: ['namespace payments: at least 50% on on-demand: only 1 of the required 2 pods can run on on-demand'],
  };

  it('lists every node with its decision and why it is kept', async () => {
    const job = makeJob({ id: 'job-5', status: 'succeeded', progress: 100, plan: planned, finished_at: '2024-05-01T10:00:05Z' });
    setup('owner', { 'GET /api/jobs/job-5': () => json(job), 'GET /api/jobs': () => json({ items: [job] }) });
    renderApp('/clusters/c-1?job=job-5');

    const panel = await screen.findByRole('region', { name: 'Optimization job' });
    const section = await within(panel).findByRole('region', { name: 'Node decisions (3)' });
    expect(section).toHaveTextContent('3 nodes: 1 change in 1 wave (at most 1 node at a time), 2 kept.');
    expect(section).toHaveTextContent('Kept because: inside stabilization window (1), PodDisruptionBudget (1).');
    expect(section).toHaveTextContent('Approach: repack the pods onto the cheapest set of nodes that fits them (the target fleet).');
    expect(section).toHaveTextContent('Cluster cost: $1.2000/h now → $1.0871/h planned.');
    expect(within(section).getByRole('note')).toHaveTextContent('only 1 of the required 2 pods can run on on-demand');

    const rows = within(within(section).getByRole('table', { name: 'Node decisions' })).getAllByRole('row').slice(1);
    expect(rows.map((row) => within(row).getAllByRole('cell')[0]?.textContent)).toEqual([
      'ip-10-0-1-1.ec2.internal',
      'ip-10-0-1-7.ec2.internal',
      'ip-10-0-1-9.ec2.internal',
    ]);
    const [replaced, young, pdb] = rows as [HTMLElement, HTMLElement, HTMLElement];
    expect(within(replaced).getByText('Replace')).toHaveClass('badge--info');
    expect(replaced).toHaveTextContent('wave 1 of 1');
    expect(replaced).toHaveTextContent('its pods fit on a cheaper spot m5a.2xlarge');
    expect(replaced).toHaveTextContent('Pods move to new nodes: new-m5a-2xlarge-1');
    expect(replaced).toHaveTextContent('42%');
    expect(replaced).toHaveTextContent('$0.1129');
    expect(within(young).getByText('Kept')).toHaveClass('badge');
    expect(within(young).getByText('inside stabilization window')).toBeInTheDocument();
    expect(young).toHaveTextContent('12%');
    expect(within(pdb).getByText('PodDisruptionBudget')).toBeInTheDocument();
    expect(within(pdb).getByText('PodDisruptionBudget shop/api allows no eviction')).toBeInTheDocument();
    expect(within(pdb).getAllByRole('cell')[4]).toHaveTextContent('—');
  });

  it('shows every node a replacement launches', async () => {
    const split = {
      ...moveToSpot('ip-10-0-1-3.ec2.internal', 55),
      extra_destinations: [{ instance_type: 'm6g.large', lifecycle: 'spot', az: 'us-east-1c', hourly_price: 0.03 }],
    };
    const job = makeJob({ id: 'job-7', status: 'succeeded', progress: 100, plan: { ...plan, actions: [split] }, finished_at: '2024-05-01T10:00:05Z' });
    setup('owner', { 'GET /api/jobs/job-7': () => json(job), 'GET /api/jobs': () => json({ items: [job] }) });
    renderApp('/clusters/c-1?job=job-7');

    const panel = await screen.findByRole('region', { name: 'Optimization job' });
    const table = await within(panel).findByRole('table', { name: 'Planned actions' });
    const row = within(table).getAllByRole('row')[1] as HTMLElement;
    expect(row).toHaveTextContent('m5a.2xlarge');
    expect(row).toHaveTextContent('+ m6g.large · Spot · us-east-1c');
  });

  it('is not shown for an older plan without per-node decisions', async () => {
    // As stored by a release before the planner: no `nodes`, `warnings`, `costs`…
    const { nodes: _nodes, warnings: _warnings, ...legacy } = plan;
    const job = makeJob({ id: 'job-6', status: 'succeeded', progress: 100, plan: legacy as unknown as Job['plan'], finished_at: '2024-05-01T10:00:05Z' });
    setup('owner', { 'GET /api/jobs/job-6': () => json(job), 'GET /api/jobs': () => json({ items: [job] }) });
    renderApp('/clusters/c-1?job=job-6');

    const panel = await screen.findByRole('region', { name: 'Optimization job' });
    expect(await within(panel).findByRole('table', { name: 'Planned actions' })).toBeInTheDocument();
    expect(within(panel).queryByRole('region', { name: /Node decisions/ })).not.toBeInTheDocument();
    expect(within(panel).queryByRole('table', { name: 'Node decisions' })).not.toBeInTheDocument();
  });
});

describe('Optimization policy', () => {
  it('saves only the changed fields with PATCH', { timeout: 15_000 }, async () => {
    const { calls } = setup('owner', { 'PATCH /api/clusters/c-1/policy': patched });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    expect(within(form).getByRole('button', { name: 'Save policy' })).toBeDisabled();
    await user.selectOptions(within(form).getByLabelText('Aggressiveness'), 'aggressive');
    await user.type(within(form).getByLabelText('Allowed instance families'), 'm5, c6i');
    await user.click(within(form).getByRole('checkbox', { name: 'arm64 (Graviton)' }));
    await user.click(within(form).getByRole('checkbox', { name: 'Maintenance mode' }));
    await user.click(within(form).getByRole('tab', { name: /Workload layer/ }));
    await user.selectOptions(within(form).getByLabelText('Rightsizing percentile'), 'p99');
    const headroom = within(form).getByLabelText('Rightsizing headroom (%)');
    expect(headroom).toHaveValue(20);
    await user.clear(headroom);
    await user.type(headroom, '35');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));

    expect(await screen.findByText('Optimization policy saved.')).toBeInTheDocument();
    expect(calls.find((call) => call.method === 'PATCH')?.body).toEqual({
      aggressiveness: 'aggressive',
      maintenance_mode: true,
      rightsize_percentile: 'p99',
      rightsize_headroom: 0.35,
      template: { allowed_families: ['m5', 'c6i'], architectures: ['arm64'] },
    });
    expect(calls.some((call) => call.method === 'PUT')).toBe(false);
    await waitFor(() => expect(within(form).getByRole('button', { name: 'Save policy' })).toBeDisabled());
  });

  it('previews what the edited policy would do before saving it', async () => {
    const { calls } = setup('owner', {
      'POST /api/clusters/c-1/policy/impact': () =>
        json({
          current_monthly: 1200,
          planned_monthly: 950.5,
          monthly_difference: -249.5,
          strategy: 'target',
          nodes_changed: 3,
          nodes_kept: 9,
          pods_moved: 14,
          waves: 3,
          actions: 5,
          nodes: [],
          warnings: [],
          source: 'agent',
        }),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    await user.selectOptions(within(form).getByLabelText('Aggressiveness'), 'aggressive');
    await user.click(within(form).getByRole('button', { name: 'Preview impact' }));

    const summary = await within(form).findByRole('status', { name: 'Estimated impact' });
    expect(summary).toHaveTextContent('Saves $249.50 per month');
    expect(summary).toHaveTextContent('3 of 12 nodes change in 3 waves, moving 14 pods.');
    const posts = calls.filter((call) => call.method === 'POST' && String(call.url).endsWith('/policy/impact'));
    expect(posts.some((post) => (post.body as { aggressiveness?: string }).aggressiveness === 'aggressive')).toBe(true);
    // Nothing was saved.
    expect(calls.some((call) => call.method === 'PUT')).toBe(false);
    expect(within(form).getByRole('button', { name: 'Save policy' })).toBeEnabled();
  });

  it('edits the disruption budget, the risk premium and the on-demand minimums', { timeout: 15_000 }, async () => {
    const { calls } = setup('owner', { 'PATCH /api/clusters/c-1/policy': patched });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    const percent = within(form).getByLabelText('Max nodes per wave (% of the cluster)');
    expect(percent).toHaveValue(10);
    expect(within(form).getByLabelText('Max nodes per wave')).toHaveValue(null);
    await user.clear(percent);
    await user.type(percent, '25');
    await user.type(within(form).getByLabelText('Max waves per plan'), '3');
    const premium = within(form).getByLabelText('Risk premium');
    expect(premium).toHaveValue(0.5);
    await user.clear(premium);
    await user.type(premium, '1.5');

    // The stored rule, then a new one selected by labels with a replica floor.
    await user.click(within(form).getByRole('tab', { name: /Workload layer/ }));
    const first = within(form).getByRole('group', { name: 'Rule 1' });
    expect(within(first).getByLabelText('Namespace')).toHaveValue('payments');
    expect(within(first).getByLabelText('Pod labels')).toHaveValue('app=api');
    expect(within(first).getByLabelText('Minimum On-Demand share (%)')).toHaveValue(50);
    await user.click(within(form).getByRole('button', { name: 'Add rule' }));
    const second = within(form).getByRole('group', { name: 'Rule 2' });
    await user.type(within(second).getByLabelText('Pod labels'), 'app=worker,  tier = batch');
    await user.type(within(second).getByLabelText('Minimum On-Demand replicas'), '2');
    // A third rule is added, then removed.
    await user.click(within(form).getByRole('button', { name: 'Add rule' }));
    await user.click(within(form).getByRole('button', { name: 'Remove rule 3' }));
    expect(within(form).queryByRole('group', { name: 'Rule 3' })).not.toBeInTheDocument();
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));

    expect(await screen.findByText('Optimization policy saved.')).toBeInTheDocument();
    expect(calls.find((call) => call.method === 'PATCH')?.body).toEqual({
      disruption_budget: { max_percent: 25, max_waves: 3 },
      risk_premium: 1.5,
      on_demand_minimums: [
        { namespace: 'payments', selector: { app: 'api' }, percent: 50 },
        { selector: { app: 'worker', tier: 'batch' }, replicas: 2 },
      ],
    });
  });

  it('checks on-demand minimum rules before sending', async () => {
    const { calls } = setup('owner');
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    await user.click(within(form).getByRole('tab', { name: /Workload layer/ }));
    await user.click(within(form).getByRole('button', { name: 'Add rule' }));
    const rule = within(form).getByRole('group', { name: 'Rule 2' });
    await user.type(within(rule).getByLabelText('Pod labels'), 'app');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));

    expect(await within(rule).findByText('Write labels as key=value, separated by commas.')).toBeInTheDocument();
    expect(within(rule).getByLabelText('Minimum On-Demand share (%)')).toHaveAccessibleDescription(expect.stringContaining('Set a percentage or a number of replicas.'));
    expect(calls.some((call) => call.method === 'PUT' || call.method === 'PATCH')).toBe(false);
  });

  it('shows a 422 on the disruption budget under its field', async () => {
    setup('owner', {
      'PATCH /api/clusters/c-1/policy': () => apiError(422, 'validation_failed', 'must be in (0, 100], got 100.5', 'disruption_budget.max_percent'),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    const percent = within(form).getByLabelText('Max nodes per wave (% of the cluster)');
    await user.clear(percent);
    await user.type(percent, '50');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));

    await waitFor(() => expect(percent).toHaveAttribute('aria-invalid', 'true'));
    expect(percent).toHaveAccessibleDescription(expect.stringContaining('must be in (0, 100], got 100.5'));
    expect(percent).toHaveFocus();
    expect(within(form).queryByRole('alert')).not.toBeInTheDocument();
  });

  it('shows a 422 on an on-demand minimum under the rule it names, or over the rules', async () => {
    const errors = [
      apiError(422, 'validation_failed', 'must be between 0 and 100, got 50', 'on_demand_minimums.percent'),
      apiError(422, 'validation_failed', 'on_demand_minimums[1].selector: invalid type', 'on_demand_minimums[1].selector'),
      apiError(422, 'validation_failed', 'each rule needs `percent` or `replicas`', 'on_demand_minimums'),
      apiError(422, 'validation_failed', 'must be at most 1000', 'on_demand_minimums.replicas'),
    ];
    setup('owner', { 'PATCH /api/clusters/c-1/policy': () => errors.shift() ?? apiError(500, 'internal', 'no more errors') });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    await user.click(within(form).getByRole('tab', { name: /Workload layer/ }));
    // One rule: the unindexed field is that rule's.
    const first = within(form).getByRole('group', { name: 'Rule 1' });
    await user.type(within(first).getByLabelText('Namespace'), '-x');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    const percent = within(first).getByLabelText('Minimum On-Demand share (%)');
    await waitFor(() => expect(percent).toHaveAccessibleDescription(expect.stringContaining('must be between 0 and 100, got 50')));
    expect(percent).toHaveFocus();

    // An indexed field goes to that rule.
    await user.click(within(form).getByRole('button', { name: 'Add rule' }));
    const second = within(form).getByRole('group', { name: 'Rule 2' });
    await user.type(within(second).getByLabelText('Minimum On-Demand replicas'), '1');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    await waitFor(() => expect(within(second).getByLabelText('Pod labels')).toHaveAccessibleDescription(expect.stringContaining('invalid type')));

    // The list as a whole: above the rules.
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    expect(await within(form).findByRole('alert')).toHaveTextContent('each rule needs `percent` or `replicas`');
    // A rule's field without its index, with two rules: above the rules, naming the input.
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    await waitFor(() => expect(within(form).getByRole('alert')).toHaveTextContent('Minimum On-Demand replicas: must be at most 1000'));
  });

  it('shows the 422 field error next to the field the server names', async () => {
    setup('owner', {
      'PATCH /api/clusters/c-1/policy': () => apiError(422, 'validation_failed', 'unknown instance family `zz9`', 'template.allowed_families[0]'),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    const families = within(form).getByLabelText('Allowed instance families');
    await user.type(families, 'zz9');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));

    await waitFor(() => expect(families).toHaveAttribute('aria-invalid', 'true'));
    expect(families).toHaveAccessibleDescription(expect.stringContaining('unknown instance family `zz9`'));
    expect(families).toHaveFocus();
    expect(within(form).queryByRole('alert')).not.toBeInTheDocument();
  });

  it('rejects a negative stabilization window before sending', async () => {
    const { calls } = setup('owner');
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    const window = within(form).getByLabelText('Stabilization window (seconds)');
    await user.clear(window);
    await user.type(window, '-5');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    expect(await within(form).findByText('Enter a whole number of seconds, 0 or more.')).toBeInTheDocument();
    expect(calls.some((call) => call.method === 'PUT' || call.method === 'PATCH')).toBe(false);
  });
});

describe('Clusters registry', () => {
  it('links each row to the detail page with the Optimize Now dialog open, for admins only', async () => {
    setup('admin');
    const user = userEvent.setup();
    renderApp('/clusters');

    const table = await screen.findByRole('table', { name: 'Clusters' });
    const link = within(table).getByRole('link', { name: /^Optimize Now: prod-eks/ });
    expect(link).toHaveAttribute('href', '/clusters/c-1?optimize=1');
    await user.click(link);
    expect(await screen.findByRole('dialog', { name: 'Optimize prod-eks' })).toBeInTheDocument();
  });

  it('has no Optimize Now for viewers', async () => {
    setup('viewer');
    renderApp('/clusters');

    const table = await screen.findByRole('table', { name: 'Clusters' });
    expect(within(table).queryByRole('link', { name: /Optimize Now/ })).not.toBeInTheDocument();
  });
});

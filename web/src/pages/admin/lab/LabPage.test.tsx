import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { LabCandidates, LabChecklist } from '../../../api/types';
import { apiError, json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';
import { ChecklistPanel } from './ChecklistPanel';

const superAdmin = makeMe('owner', { platform_role: 'super_admin' });

const candidates: LabCandidates = {
  instances: [
    {
      organization_id: 'o1',
      organization_name: 'Acme Corp',
      account_id: 'acc-lab',
      account_name: 'Acme Lab',
      provider: 'sim',
      cluster_id: 'c1',
      cluster_name: 'lab',
      instance_id: 'i-0abc',
      instance_type: 'm5.large',
      lifecycle: 'on_demand',
      az: 'us-west-2a',
      hourly_price: 0.096,
      switchable: true,
      in_ab_test: false,
      lab_ready: true,
    },
  ],
  models: [
    { id: 'shipped:risk-v1', name: 'risk-v1 (shipped)', status: 'shipped' },
    { id: 'm-2', name: 'Spot-V2-Aggressive', status: 'validated' },
  ],
};

function checklist(passed: boolean): LabChecklist {
  return {
    model_id: 'm-2',
    passed,
    items: [
      { key: 'switch_tested', label: 'At least one live switch ran with this model', passed: true, detail: '1 live switch' },
      { key: 'boot_time', label: 'Boot time < 60 s', passed: true, detail: 'slowest boot 4.2 s' },
      { key: 'ab_cost_not_worse', label: 'A/B cost not worse than the other model', passed, detail: '31.0 % of on-demand against 100.0 %' },
    ],
  };
}

function setup(passed: boolean, extra: Parameters<typeof mockApi>[0] = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(superAdmin),
    'GET /api/lab/candidates': () => json(candidates),
    'GET /api/lab/switches': () => json({ items: [] }),
    'GET /api/lab/ab-tests': () => json({ items: [] }),
    'GET /api/lab/models/m-2/checklist': () => json(checklist(passed)),
    ...extra,
  });
}

describe('The Lab', () => {
  it('is not a page for a customer, and not in their navigation', async () => {
    signIn();
    mockApi({ 'GET /api/auth/me': () => json(makeMe('owner')) });
    renderApp('/admin/lab');
    expect(await screen.findByText('Page not found')).toBeInTheDocument();
    expect(screen.queryByRole('link', { name: /The Lab/ })).not.toBeInTheDocument();
  });

  it('starts a live switch of the chosen node with the chosen model', async () => {
    const { calls } = setup(false, {
      'POST /api/lab/live-switch': () =>
        json(
          {
            switch: { id: 's-1', organization_id: 'o1', account_id: 'acc-lab', cluster_id: 'c1', instance_id: 'i-0abc', model_id: 'm-2', status: 'queued', requested_by: 'a', created_at: new Date().toISOString(), phases: [] },
            job: { id: 'j-1', kind: 'lab_switch', status: 'queued', progress: 0, dry_run: false, created_at: new Date().toISOString() },
          },
          { status: 202 },
        ),
      'GET /api/lab/switches/s-1': () =>
        json({ id: 's-1', organization_id: 'o1', account_id: 'acc-lab', cluster_id: 'c1', instance_id: 'i-0abc', model_id: 'm-2', status: 'running', chosen_type: 'c5.large', chosen_az: 'us-west-2a', chosen_lifecycle: 'spot', requested_by: 'a', created_at: new Date().toISOString(), phases: [{ seq: 0, name: 'spot_request', status: 'done', started_at: new Date().toISOString(), duration_ms: 1100, detail: {} }] }),
    });
    renderApp('/admin/lab');
    expect(await screen.findByRole('heading', { name: 'The Lab' })).toBeInTheDocument();
    const form = await screen.findByRole('form', { name: 'Live switch' });
    expect(within(form).getByLabelText('Running instance')).toHaveDisplayValue(/i-0abc · m5.large on-demand · us-west-2a · lab · data volume/);
    await userEvent.selectOptions(within(form).getByLabelText('Target model'), 'm-2');
    await userEvent.type(within(form).getByLabelText('Target instance type (optional)'), 'c5.large');
    await userEvent.click(within(form).getByRole('button', { name: /Execute live switch/ }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST')).toBe(true));
    const post = calls.find((c) => c.method === 'POST');
    expect(post?.body).toEqual({ instance_id: 'i-0abc', account_id: 'acc-lab', model_id: 'm-2', target_type: 'c5.large' });
    // The telemetry follows the switch as it runs.
    await waitFor(() => expect(screen.getByLabelText('Spot request time')).toHaveTextContent('1.1 s'), { timeout: 3000 });
  });

  it('shows a refused switch with the reason next to the field', async () => {
    setup(false, {
      'POST /api/lab/live-switch': () => apiError(422, 'validation_failed', 'c9.huge is not offered in us-west-2', 'target_type'),
    });
    renderApp('/admin/lab');
    const form = await screen.findByRole('form', { name: 'Live switch' });
    await userEvent.type(within(form).getByLabelText('Target instance type (optional)'), 'c9.huge');
    await userEvent.click(within(form).getByRole('button', { name: /Execute live switch/ }));
    expect(await within(form).findByText('c9.huge is not offered in us-west-2')).toBeInTheDocument();
  });

  it('keeps graduation closed while a safety check fails', async () => {
    setup(false);
    renderApp('/admin/lab');
    const list = await screen.findByRole('list', { name: 'Safety checklist' });
    expect(within(list).getAllByText('failed')).toHaveLength(1);
    expect(screen.getByText('1 of 3 checks fail')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: /Graduate to production/ })).toBeDisabled();
  });

  it('graduates after the confirmation that shows the passing checklist', async () => {
    const { calls } = setup(true, {
      'POST /api/lab/graduate': () =>
        json({ model_id: 'm-2', graduated_by: 'admin', graduated_at: new Date().toISOString(), checklist: checklist(true), active_model: 'm-2' }),
      'GET /api/admin/risk/models': () => json({ items: [], active: { id: 'm-2', name: 'x', runtime: 'onnx:tract', degraded: false } }),
    });
    renderApp('/admin/lab');
    const button = await screen.findByRole('button', { name: /Graduate to production/ });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    const dialog = await screen.findByRole('dialog', { name: 'Graduate this model to production?' });
    expect(within(dialog).getByText('All safety checks pass')).toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole('button', { name: 'Graduate model' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.pathname === '/api/lab/graduate')).toBe(true));
    expect(calls.find((c) => c.url.pathname === '/api/lab/graduate')?.body).toEqual({ model_id: 'm-2' });
  });
});

describe('ChecklistPanel', () => {
  it('marks each item passed or failed with its figures', () => {
    render(<ChecklistPanel checklist={checklist(false)} />);
    const items = screen.getAllByRole('listitem');
    expect(items).toHaveLength(3);
    expect(within(items[1] as HTMLElement).getByText('slowest boot 4.2 s')).toBeInTheDocument();
    expect(within(items[2] as HTMLElement).getByText('failed')).toBeInTheDocument();
    expect(within(items[0] as HTMLElement).getByText('passed')).toBeInTheDocument();
  });
});

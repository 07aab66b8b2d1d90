import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { ActiveRiskModel, LabChecklist, RiskModel, RiskModelList, SystemHealth } from '../../../api/types';
import { apiError, json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';

const shipped: ActiveRiskModel = { id: 'shipped:risk-v1', name: 'risk-v1 (shipped)', runtime: 'onnx:tract', degraded: false };

const validation = {
  runtime: 'tract',
  contract: 'v1',
  checks: ['loads', 'input `features` float32 [N, 22]', 'output `interruption_probability` [N]', 'contract vectors in [0, 1]'],
  duration_ms: 3,
};

function makeModel(overrides: Partial<RiskModel> = {}): RiskModel {
  return {
    id: 'm-1',
    name: 'always_risky.onnx',
    status: 'validated',
    sha256: '7047c85f2f5413b6a8f861db05f90b66661966d4b5ef5834bf6edc00da900b38',
    size_bytes: 448,
    validation,
    uploaded_by: 'admin@platform.example.com',
    uploaded_at: '2026-01-02T10:00:00Z',
    validated_at: '2026-01-02T10:00:00Z',
    ...overrides,
  };
}

function health(active: ActiveRiskModel, overrides: Partial<SystemHealth> = {}): SystemHealth {
  return {
    status: active.degraded ? 'degraded' : 'ok',
    database: 'ok',
    safe_mode: false,
    job_queue: { worker_alive: true, worker_restarts: 0, kinds: [] },
    risk_model: active,
    actors: [
      { account_id: 'a1', organization_id: 'o1', state: 'running', restarts: 0, clusters: 2, model: active.id, cluster_models: [active.id, active.id] },
      { account_id: 'a2', organization_id: 'o1', state: 'running', restarts: 0, clusters: 1, model: active.id, cluster_models: [active.id] },
    ],
    ...overrides,
  };
}

const superAdmin = makeMe('owner', { platform_role: 'super_admin' });

function checklist(passed: boolean): LabChecklist {
  return {
    model_id: 'm-1',
    passed,
    items: [
      { key: 'switch_tested', label: 'A live switch ran on this model', passed, detail: passed ? '1 switch' : 'no switch yet' },
      { key: 'boot_time', label: 'Boot time under 60 s', passed: true, detail: 'p95 41 s' },
    ],
  };
}

function setup(list: RiskModelList, extra: Parameters<typeof mockApi>[0] = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(superAdmin),
    'GET /api/admin/risk/models': () => json(list),
    'GET /api/admin/health': () => json(health(list.active)),
    'GET /api/lab/models/m-1/checklist': () => json(checklist(true)),
    ...extra,
  });
}

describe('AI model admin page', () => {
  it('shows the active model, how many actors run it and the registry', async () => {
    setup({ active: shipped, items: [makeModel()] });
    renderApp('/admin/risk-model');

    expect(await screen.findByRole('heading', { name: 'AI model', level: 1 })).toBeInTheDocument();
    expect(await screen.findByText('shipped:risk-v1', { selector: 'dd' })).toBeInTheDocument();
    expect(screen.getByText('onnx:tract')).toBeInTheDocument();
    expect(screen.queryByText(/Degraded — static heuristic in use/)).not.toBeInTheDocument();
    const usage = await screen.findByRole('list', { name: 'Models in use by actors' });
    expect(within(usage).getByText('2 account actors, 3 cluster actors')).toBeInTheDocument();

    const table = screen.getByRole('table', { name: 'Risk model registry' });
    expect(within(table).getByText('always_risky.onnx')).toBeInTheDocument();
    expect(within(table).getByText('Validated')).toBeInTheDocument();
    expect(within(table).getByText('7047c85f2f54')).toBeInTheDocument();
    expect(within(table).getByText('448 B')).toBeInTheDocument();
    expect(within(table).getByText('4 checks passed')).toBeInTheDocument();
    expect(within(table).getByRole('button', { name: 'Graduate always_risky.onnx' })).toBeInTheDocument();
  });

  it('shows a red banner with the load error when the model is degraded', async () => {
    setup({
      active: { id: 'heuristic', name: 'static heuristic', runtime: 'heuristic', degraded: true, load_error: 'shipped model failed to load: bad magic' },
      items: [],
    });
    renderApp('/admin/risk-model');

    const banner = await screen.findByRole('alert');
    expect(banner).toHaveTextContent('Degraded — static heuristic in use');
    expect(banner).toHaveTextContent('shipped model failed to load: bad magic');
    expect(screen.getByText('No uploaded models yet')).toBeInTheDocument();
  });

  it('shows the reason the server rejected an upload under the file input', async () => {
    const { calls } = setup(
      { active: shipped, items: [] },
      {
        'POST /api/admin/risk/models': () =>
          apiError(422, 'validation_failed', 'model rejected: model breaks contract v1: expected one input `features`, got ["x"]', 'file'),
      },
    );
    const user = userEvent.setup();
    renderApp('/admin/risk-model');

    const fileInput = await screen.findByLabelText('ONNX file');
    expect(fileInput).toHaveAttribute('accept', '.onnx');
    await user.upload(fileInput, new File([new Uint8Array([8, 1, 2])], 'wrong_inputs.onnx', { type: 'application/octet-stream' }));
    await user.type(screen.getByLabelText('Name (optional)'), 'candidate');
    await user.click(screen.getByRole('button', { name: 'Upload and validate' }));

    expect(await screen.findByText(/model rejected: model breaks contract v1/)).toBeInTheDocument();
    expect(fileInput).toHaveAttribute('aria-invalid', 'true');
    expect(fileInput).toHaveAccessibleDescription(expect.stringContaining('model rejected'));
    const upload = calls.find((call) => call.method === 'POST');
    expect(upload?.url.pathname).toBe('/api/admin/risk/models');
    // A multipart body (jsdom's File does not survive undici's FormData, so only the parts are checked here; e2e uploads real files).
    expect(String(upload?.body)).toContain('name="file"');
    expect(String(upload?.body)).toMatch(/name="name"\r\n\r\ncandidate/);
  });

  it('asks for a file before uploading', async () => {
    const { calls } = setup({ active: shipped, items: [] });
    const user = userEvent.setup();
    renderApp('/admin/risk-model');

    await user.click(await screen.findByRole('button', { name: 'Upload and validate' }));

    expect(await screen.findByText('Choose an .onnx file to upload.')).toBeInTheDocument();
    expect(calls.some((call) => call.method === 'POST')).toBe(false);
  });

  it('graduates a model only after the confirmation and shows it as active', async () => {
    const candidate = makeModel();
    const graduated: RiskModelList = {
      active: { id: candidate.id, name: candidate.name, runtime: 'onnx:tract', degraded: false },
      items: [{ ...candidate, status: 'graduated', graduated_at: '2026-01-02T11:00:00Z' }],
    };
    let current: RiskModelList = { active: shipped, items: [candidate] };
    const { calls } = setup(current, {
      'GET /api/admin/risk/models': () => json(current),
      'POST /api/admin/risk/models/m-1/graduate': () => {
        current = graduated;
        return json(graduated);
      },
    });
    const user = userEvent.setup();
    renderApp('/admin/risk-model');

    await user.click(await screen.findByRole('button', { name: 'Graduate always_risky.onnx' }));
    const dialog = screen.getByRole('dialog', { name: 'Graduate this model?' });
    expect(dialog).toHaveTextContent('every account and cluster actor');
    expect(calls.some((call) => call.method === 'POST')).toBe(false);
    await within(dialog).findByText('All safety checks pass');

    await user.click(within(dialog).getByRole('button', { name: 'Graduate model' }));

    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(calls.filter((call) => call.method === 'POST').map((call) => call.url.pathname)).toEqual(['/api/admin/risk/models/m-1/graduate']);
    expect(await screen.findByText('always_risky.onnx is now the active model.')).toBeInTheDocument();
    const table = screen.getByRole('table', { name: 'Risk model registry' });
    expect(within(table).getByText('Graduated')).toBeInTheDocument();
    expect(within(table).getByRole('button', { name: 'Roll back always_risky.onnx' })).toBeInTheDocument();
    expect(screen.getByText('m-1', { selector: 'dd' })).toBeInTheDocument();
  });

  it('shows the Lab checklist in the graduation dialog and keeps it closed while a check fails', async () => {
    const { calls } = setup(
      { active: shipped, items: [makeModel()] },
      { 'GET /api/lab/models/m-1/checklist': () => json(checklist(false)) },
    );
    const user = userEvent.setup();
    renderApp('/admin/risk-model');

    await user.click(await screen.findByRole('button', { name: 'Graduate always_risky.onnx' }));
    const dialog = screen.getByRole('dialog', { name: 'Graduate this model?' });
    const checks = await within(dialog).findByRole('list', { name: 'Safety checklist' });
    expect(within(checks).getByText('A live switch ran on this model')).toBeInTheDocument();
    expect(within(checks).getByText('no switch yet')).toBeInTheDocument();
    expect(within(dialog).getByText('1 of 2 checks fail')).toBeInTheDocument();
    expect(within(dialog).getByRole('button', { name: 'Graduate model' })).toBeDisabled();
    expect(calls.some((call) => call.method === 'POST')).toBe(false);
  });

  it('does not graduate when the confirmation is cancelled', async () => {
    const { calls } = setup({ active: shipped, items: [makeModel({ status: 'retired' })] });
    const user = userEvent.setup();
    renderApp('/admin/risk-model');

    await user.click(await screen.findByRole('button', { name: 'Graduate always_risky.onnx' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Cancel' }));

    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(calls.some((call) => call.method === 'POST')).toBe(false);
  });

  it('starts a recompute and shows the counts when it is done', async () => {
    let polls = 0;
    const base = { id: 'job-1', kind: 'risk_recompute', dry_run: false, created_at: '2026-01-02T10:00:00Z' };
    setup(
      { active: shipped, items: [] },
      {
        'POST /api/admin/risk/recompute': () => json({ ...base, status: 'queued', progress: 0 }, { status: 202 }),
        'GET /api/admin/risk/jobs/job-1': () => {
          polls += 1;
          return polls === 1
            ? json({ ...base, status: 'running', progress: 40, message: 'Rescoring account 1 of 2' })
            : json({
                ...base,
                status: 'succeeded',
                progress: 100,
                finished_at: '2026-01-02T10:00:05Z',
                result: { accounts: 2, pools: 17, instances: 75, failed: [], model: 'shipped:risk-v1', degraded: false },
              });
        },
      },
    );
    const user = userEvent.setup();
    renderApp('/admin/risk-model');

    await user.click(await screen.findByRole('button', { name: 'Recompute risk scores' }));

    const panel = await screen.findByRole('region', { name: 'Risk recompute' });
    expect(await within(panel).findByText('Rescoring account 1 of 2')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Recompute risk scores' })).toBeDisabled();
    expect(await within(panel).findByText('Succeeded', {}, { timeout: 3000 })).toBeInTheDocument();
    expect(within(panel).getByText('75')).toBeInTheDocument();
    expect(within(panel).getByText('17')).toBeInTheDocument();
    expect(within(panel).getByText(/Risk scores recomputed with shipped:risk-v1/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Recompute risk scores' })).toBeEnabled();
  });

  it('shows the AI model entry in the navigation to super-admins only', async () => {
    setup({ active: shipped, items: [] });
    renderApp('/admin/risk-model');

    const nav = screen.getByRole('navigation', { name: 'Main' });
    const link = await within(nav).findByRole('link', { name: 'AI model' });
    expect(link).toHaveAttribute('href', '/admin/risk-model');
    expect(within(nav).getByRole('group', { name: 'Platform' })).toBeInTheDocument();
  });
});

describe('AI model page for other users', () => {
  it.each(['owner', 'admin', 'viewer'] as const)('hides the nav entry and refuses the page for an org %s', async (role) => {
    signIn();
    const { calls } = mockApi({ 'GET /api/auth/me': () => json(makeMe(role)) });
    renderApp('/admin/risk-model');

    expect(await screen.findByText('You are not allowed to view this page')).toBeInTheDocument();
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(within(nav).getByRole('link', { name: /Dashboard/ })).toBeInTheDocument();
    expect(within(nav).queryByRole('link', { name: /AI model/ })).not.toBeInTheDocument();
    expect(within(nav).queryByText('Platform')).not.toBeInTheDocument();
    expect(calls.some((call) => call.url.pathname.startsWith('/api/admin/'))).toBe(false);
  });
});

import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../api/types';
import { apiError, json, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import { estimate, makeTemplate } from './fixtures';

type Handlers = Parameters<typeof mockApi>[0];

function setup(role: Role = 'owner', handlers: Handlers = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/templates': () => json({ items: [makeTemplate()] }),
    'GET /api/templates/t-1': () => json(makeTemplate()),
    'POST /api/templates/estimate': () => json(estimate),
    ...handlers,
  });
}

const steps = () => screen.getByRole('list', { name: 'Template steps' });
const currentStep = () => within(steps()).getAllByRole('listitem').find((item) => item.getAttribute('aria-current') === 'step');
const next = (user: ReturnType<typeof userEvent.setup>) => user.click(screen.getByRole('button', { name: /^Next: / }));
const estimatePanel = () => screen.getByRole('complementary', { name: 'Cost estimate' });

/** Name step filled in, Instances step open. */
async function toInstances(user: ReturnType<typeof userEvent.setup>) {
  await user.type(await screen.findByLabelText('Name'), 'web-spot');
  await next(user);
  await screen.findByRole('heading', { name: 'Instances' });
}

describe('Node template wizard', () => {
  it('walks the four steps, checking each before the next opens', async () => {
    setup();
    const user = userEvent.setup();
    renderApp('/templates/new');

    expect(await screen.findByRole('heading', { name: 'Create node template', level: 1 })).toBeInTheDocument();
    expect(currentStep()).toHaveTextContent('Name');
    await next(user);
    expect(screen.getByLabelText('Name')).toHaveAccessibleDescription(expect.stringContaining('Enter a name of 1 to 64 characters.'));
    expect(currentStep()).toHaveTextContent('Name');

    await user.type(screen.getByLabelText('Name'), 'web-spot');
    await next(user);
    expect(screen.getByRole('heading', { name: 'Instances' })).toHaveFocus();
    expect(currentStep()).toHaveTextContent('Instances');
    expect(screen.getByLabelText('Name')).not.toBeVisible();

    // No family yet: the step stays open.
    await next(user);
    expect(screen.getByLabelText('Instance families')).toHaveAccessibleDescription(expect.stringContaining('Choose at least one instance family.'));
    await user.click(screen.getByRole('button', { name: 'Add m6i' }));
    await next(user);
    expect(currentStep()).toHaveTextContent('Purchasing');
    expect(screen.getByLabelText('Capacity type')).toHaveValue('spot');

    await next(user);
    expect(currentStep()).toHaveTextContent('Node settings');
    expect(screen.getByLabelText('Volume type')).toHaveValue('gp3');
    expect(screen.getByLabelText('Size (GiB)')).toHaveValue(50);
    expect(screen.queryByRole('button', { name: /^Next: / })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Create template' })).toBeInTheDocument();

    // Back, and the indicator reopens a step already reached.
    await user.click(screen.getByRole('button', { name: 'Back' }));
    expect(currentStep()).toHaveTextContent('Purchasing');
    await user.click(within(steps()).getByRole('button', { name: /Name/ }));
    expect(screen.getByLabelText('Name')).toHaveValue('web-spot');
  });

  it('warns as the user types when arm64 meets an x86-only family', async () => {
    setup();
    const user = userEvent.setup();
    renderApp('/templates/new');
    await toInstances(user);

    await user.click(screen.getByRole('checkbox', { name: 'arm64 (Graviton)' }));
    // Not added yet: the warning follows the typing.
    await user.type(screen.getByLabelText('Instance families'), 'g4dn');
    const conflicts = screen.getByRole('status', { name: 'Conflicts' });
    expect(conflicts).toHaveTextContent('g4dn has no arm64 (Graviton) instance types');
    await user.keyboard('{Enter}');
    expect(screen.getByRole('list', { name: 'Chosen families' })).toHaveTextContent('g4dn');
    expect(screen.getByRole('status', { name: 'Conflicts' })).toBeInTheDocument();

    // Allowing x86_64 too resolves it.
    await user.click(screen.getByRole('checkbox', { name: 'x86_64' }));
    expect(screen.queryByRole('status', { name: 'Conflicts' })).not.toBeInTheDocument();
  });

  it('prices the draft a moment after it changes: pools, average prices and the discount', async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/templates/new');
    await toInstances(user);

    expect(within(estimatePanel()).getByText(/Choose at least one instance family/)).toBeInTheDocument();
    await user.type(screen.getByLabelText('Instance families'), 'm6i{Enter}c6i{Enter}');
    const figures = await within(estimatePanel()).findByRole('status', {}, { timeout: 3000 });
    expect(figures).toHaveTextContent('Spot pools72');
    expect(figures).toHaveTextContent('Average spot$0.0712/h');
    expect(figures).toHaveTextContent('Average On-Demand$0.2034/h');
    expect(figures).toHaveTextContent('Spot discount65%');
    // Debounced: the two families typed in quick succession are priced once, together.
    const asked = calls.filter((call) => call.url.pathname === '/api/templates/estimate');
    expect(asked).toHaveLength(1);
    expect(asked[0]?.body).toMatchObject({ families: ['m6i', 'c6i'], architectures: [], capacity_type: 'spot' });
  });

  it('asks for a linked cloud account when the estimate answers 409', async () => {
    setup('owner', { 'POST /api/templates/estimate': () => apiError(409, 'conflict', 'link a cloud account first') });
    const user = userEvent.setup();
    renderApp('/templates/new');
    await toInstances(user);

    await user.click(screen.getByRole('button', { name: 'Add m7g' }));
    const link = await within(estimatePanel()).findByRole('link', { name: 'Link a cloud account to see prices' }, { timeout: 3000 });
    expect(link).toHaveAttribute('href', '/settings/cloud-integrations');
  });

  it('shows the estimate’s 422 under the field it names while the user edits', async () => {
    setup('owner', {
      'POST /api/templates/estimate': () => apiError(422, 'validation_failed', 'unknown instance family "zz9" (not in the instance catalog)', 'families'),
    });
    const user = userEvent.setup();
    renderApp('/templates/new');
    await toInstances(user);

    await user.type(screen.getByLabelText('Instance families'), 'zz9{Enter}');
    await waitFor(() => expect(screen.getByLabelText('Instance families')).toHaveAccessibleDescription(expect.stringContaining('unknown instance family "zz9"')), {
      timeout: 3000,
    });
    expect(within(estimatePanel()).getByText(/Fix the template to see prices/)).toBeInTheDocument();
  });

  it('creates the template, and a 422 reopens the step of the field it names', async () => {
    const responses = [
      apiError(422, 'validation_failed', 'm6i has no arm64 instance types: remove it or allow x86_64 too', 'architectures'),
      apiError(422, 'validation_failed', 'io2 IOPS must be between 100 and 256000', 'storage.iops'),
      json(makeTemplate({ id: 't-9', name: 'web-spot' }), { status: 201 }),
    ];
    const { calls } = setup('owner', { 'POST /api/templates': () => responses.shift() ?? apiError(500, 'internal', 'no more') });
    const user = userEvent.setup();
    renderApp('/templates/new');
    await toInstances(user);

    await user.click(screen.getByRole('button', { name: 'Add m6i' }));
    await next(user);
    await user.selectOptions(screen.getByLabelText('Capacity type'), 'hybrid');
    await next(user);
    await user.selectOptions(screen.getByLabelText('Volume type'), 'io2');
    await user.type(screen.getByLabelText('IOPS'), '300000');
    await user.type(screen.getByLabelText('Node labels'), 'team=web');
    await user.click(screen.getByRole('button', { name: 'Add taint' }));
    await user.type(screen.getByLabelText('Taint 1 key'), 'dedicated');
    await user.type(screen.getByLabelText('Taint 1 value'), 'web');
    // Checked here first: io2 IOPS out of range.
    await user.click(screen.getByRole('button', { name: 'Create template' }));
    expect(screen.getByLabelText('IOPS')).toHaveAccessibleDescription(expect.stringContaining('Enter 100–256,000 IOPS for io2.'));
    expect(calls.some((call) => call.method === 'POST' && call.url.pathname === '/api/templates')).toBe(false);
    await user.clear(screen.getByLabelText('IOPS'));
    await user.type(screen.getByLabelText('IOPS'), '8000');

    // The server's 422 on the architectures: back to Instances, under the architectures.
    await user.click(screen.getByRole('button', { name: 'Create template' }));
    expect(await screen.findByRole('heading', { name: 'Instances' })).toBeInTheDocument();
    expect(currentStep()).toHaveTextContent('Instances');
    expect(screen.getByRole('group', { name: 'Architectures' })).toHaveAccessibleDescription(expect.stringContaining('m6i has no arm64 instance types'));

    // A 422 on the disk: Node settings, under IOPS.
    await user.click(within(steps()).getByRole('button', { name: /Node settings/ }));
    await user.click(screen.getByRole('button', { name: 'Create template' }));
    await waitFor(() => expect(screen.getByLabelText('IOPS')).toHaveAccessibleDescription(expect.stringContaining('io2 IOPS must be between 100 and 256000')));

    await user.click(screen.getByRole('button', { name: 'Create template' }));
    expect(await screen.findByText('Template web-spot created.')).toBeInTheDocument();
    expect(await screen.findByRole('heading', { name: 'Node templates', level: 1 })).toBeInTheDocument();
    const posts = calls.filter((call) => call.method === 'POST' && call.url.pathname === '/api/templates');
    expect(posts.at(-1)?.body).toEqual({
      name: 'web-spot',
      spec: {
        families: ['m6i'],
        architectures: [],
        excluded_sizes: ['nano', 'micro'],
        allow_burstable: false,
        capacity_type: 'hybrid',
        strategy: 'capacity_optimized',
        on_demand_fallback: true,
        storage: { volume_type: 'io2', size_gib: 50, iops: 8000 },
        security_groups: [],
        labels: { team: 'web' },
        taints: [{ key: 'dedicated', value: 'web', effect: 'NoSchedule' }],
      },
    });
  });

  it('edits an existing template and saves it with PATCH', async () => {
    const { calls } = setup('owner', { 'PATCH /api/templates/t-1': async (request) => json({ ...makeTemplate(), ...((await request.json()) as object) }) });
    const user = userEvent.setup();
    renderApp('/templates/t-1');

    expect(await screen.findByRole('heading', { name: 'Edit general-spot', level: 1 })).toBeInTheDocument();
    expect(screen.getByLabelText('Name')).toHaveValue('general-spot');
    // Every step is reachable at once when editing.
    await user.click(within(steps()).getByRole('button', { name: /Purchasing/ }));
    await user.click(screen.getByRole('checkbox', { name: 'Fall back to On-Demand' }));
    await user.click(within(steps()).getByRole('button', { name: /Node settings/ }));
    await user.clear(screen.getByLabelText('Size (GiB)'));
    await user.type(screen.getByLabelText('Size (GiB)'), '100');
    await user.click(screen.getByRole('button', { name: 'Save changes' }));

    expect(await screen.findByText('general-spot saved.')).toBeInTheDocument();
    const patch = calls.find((call) => call.method === 'PATCH');
    expect(patch?.body).toMatchObject({
      name: 'general-spot',
      description: 'Stateless services',
      spec: { families: ['m6i', 'm7i', 'c6i'], architectures: ['x86_64'], on_demand_fallback: false, storage: { volume_type: 'gp3', size_gib: 100 } },
    });
  });

  it('shows viewers a template read-only', async () => {
    setup('viewer');
    const user = userEvent.setup();
    renderApp('/templates/t-1');

    expect(await screen.findByText('Only owners and admins can change templates.')).toBeInTheDocument();
    expect(screen.getByLabelText('Name')).toBeDisabled();
    await user.click(within(steps()).getByRole('button', { name: /Node settings/ }));
    expect(screen.getByLabelText('Size (GiB)')).toBeDisabled();
    expect(screen.queryByRole('button', { name: 'Save changes' })).not.toBeInTheDocument();
  });
});

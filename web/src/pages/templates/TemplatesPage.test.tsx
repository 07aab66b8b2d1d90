import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role, Template } from '../../api/types';
import { apiError, json, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import { makeTemplate } from './fixtures';

const general = makeTemplate();
const batch = makeTemplate({
  id: 't-2',
  name: 'batch-graviton',
  description: null,
  is_default: false,
  spec: {
    ...general.spec,
    families: ['m7g', 'c7g', 'r7g', 'm6g', 'c6g'],
    architectures: [],
    capacity_type: 'hybrid',
    strategy: 'lowest_price',
    storage: { volume_type: 'io2', size_gib: 200, iops: 8000 },
  },
  used_by: [{ cluster_id: 'c-1', cluster_name: 'prod-eks' }],
});

type Handlers = Parameters<typeof mockApi>[0];

function setup(role: Role = 'owner', templates: Template[] = [general, batch], handlers: Handlers = {}) {
  signIn();
  let items = templates;
  const api = mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/templates': () => json({ items }),
    ...handlers,
  });
  return { ...api, setItems: (next: Template[]) => (items = next) };
}

const row = (name: string) => screen.getAllByRole('row').find((r) => within(r).queryByRole('link', { name }) !== null) as HTMLElement;

describe('Node templates list', () => {
  it('lists templates with the default badged, families, purchasing, disk and usage', async () => {
    setup();
    renderApp('/templates');

    const table = await screen.findByRole('table', { name: 'Node templates' });
    expect(within(table).getAllByRole('row')).toHaveLength(3);
    const first = row('general-spot');
    expect(within(first).getByText('Default')).toHaveClass('badge');
    expect(first).toHaveTextContent('m6i, m7i, c6i');
    expect(first).toHaveTextContent('Spot');
    expect(first).toHaveTextContent('SpotCapacity optimizedOn-Demand fallback');
    expect(first).toHaveTextContent('50 GiB gp3');
    expect(first).toHaveTextContent('No clusters');
    const second = row('batch-graviton');
    expect(within(second).queryByText('Default')).not.toBeInTheDocument();
    expect(second).toHaveTextContent('m7g, c7g, r7g, m6g +1 more');
    expect(second).toHaveTextContent('From families');
    expect(second).toHaveTextContent('200 GiB io2 · 8,000 IOPS');
    expect(second).toHaveTextContent('1 cluster');
    expect(within(first).getByRole('link', { name: 'general-spot' })).toHaveAttribute('href', '/templates/t-1');
    // The default cannot be made default again.
    expect(within(first).queryByRole('button', { name: /Set .* as default/ })).not.toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Create template' })).toHaveAttribute('href', '/templates/new');
  });

  it('clones a template and shows the copy', async () => {
    const copy = makeTemplate({ id: 't-3', name: 'general-spot (copy)', is_default: false });
    const { calls, setItems } = setup('owner', [general, batch], {
      'POST /api/templates/t-1/clone': () => {
        setItems([general, batch, copy]);
        return json(copy, { status: 201 });
      },
    });
    const user = userEvent.setup();
    renderApp('/templates');

    await user.click(await screen.findByRole('button', { name: 'Clone general-spot' }));
    expect(await screen.findByText('Copied general-spot as “general-spot (copy)”.')).toBeInTheDocument();
    expect(await screen.findByRole('link', { name: 'general-spot (copy)' })).toBeInTheDocument();
    expect(calls.find((call) => call.method === 'POST')?.body).toEqual({});
  });

  it('sets another template as the default', async () => {
    const { calls, setItems } = setup('owner', [general, batch], {
      'POST /api/templates/t-2/default': () => {
        setItems([{ ...batch, is_default: true }, { ...general, is_default: false }]);
        return json({ ...batch, is_default: true });
      },
    });
    const user = userEvent.setup();
    renderApp('/templates');

    await user.click(await screen.findByRole('button', { name: 'Set batch-graviton as default' }));
    expect(await screen.findByText('batch-graviton is now the default template.')).toBeInTheDocument();
    await waitFor(() => expect(within(row('batch-graviton')).getByText('Default')).toBeInTheDocument());
    expect(within(row('general-spot')).queryByText('Default')).not.toBeInTheDocument();
    expect(within(row('general-spot')).getByRole('button', { name: 'Set general-spot as default' })).toBeInTheDocument();
    expect(calls.some((call) => call.method === 'POST' && call.url.pathname === '/api/templates/t-2/default')).toBe(true);
  });

  it('keeps the delete dialog open with the server message when clusters still use the template', async () => {
    setup('owner', [general, batch], {
      'DELETE /api/templates/t-2': () => apiError(409, 'conflict', 'template batch-graviton is used by the policy of prod-eks'),
    });
    const user = userEvent.setup();
    renderApp('/templates');

    await user.click(await screen.findByRole('button', { name: 'Delete batch-graviton' }));
    const dialog = screen.getByRole('dialog', { name: 'Delete batch-graviton?' });
    expect(within(dialog).getByRole('link', { name: 'prod-eks' })).toHaveAttribute('href', '/clusters/c-1');
    await user.click(within(dialog).getByRole('button', { name: 'Delete template' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('template batch-graviton is used by the policy of prod-eks');
    expect(screen.getByRole('dialog', { name: 'Delete batch-graviton?' })).toBeInTheDocument();
  });

  it('deletes an unused template after confirmation', async () => {
    const { calls, setItems } = setup('owner', [general, batch], {
      'DELETE /api/templates/t-1': () => {
        setItems([batch]);
        return new Response(null, { status: 204 });
      },
    });
    const user = userEvent.setup();
    renderApp('/templates');

    await user.click(await screen.findByRole('button', { name: 'Delete general-spot' }));
    const dialog = screen.getByRole('dialog', { name: 'Delete general-spot?' });
    expect(dialog).toHaveTextContent('No cluster uses it. The oldest remaining template becomes the default.');
    await user.click(within(dialog).getByRole('button', { name: 'Delete template' }));
    expect(await screen.findByText('general-spot was deleted.')).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByRole('link', { name: 'general-spot' })).not.toBeInTheDocument());
    expect(calls.some((call) => call.method === 'DELETE')).toBe(true);
  });

  it('shows viewers the templates without any write action', async () => {
    setup('viewer');
    renderApp('/templates');

    await screen.findByRole('table', { name: 'Node templates' });
    expect(screen.queryByRole('link', { name: 'Create template' })).not.toBeInTheDocument();
    for (const action of [/^Edit /, /^Clone /, /^Set .* as default$/, /^Delete /]) {
      expect(screen.queryByRole('button', { name: action })).not.toBeInTheDocument();
      expect(screen.queryByRole('link', { name: action })).not.toBeInTheDocument();
    }
    // The name still opens the template, read-only.
    expect(screen.getByRole('link', { name: 'general-spot' })).toBeInTheDocument();
  });

  it('explains templates when there are none and offers to create one', async () => {
    setup('admin', []);
    renderApp('/templates');

    expect(await screen.findByRole('heading', { name: 'No node templates yet' })).toBeInTheDocument();
    expect(screen.getByText(/says which instance families and architectures new nodes may use/)).toBeInTheDocument();
    const create = screen.getAllByRole('link', { name: 'Create template' });
    expect(create).toHaveLength(1);
    expect(create[0]).toHaveAttribute('href', '/templates/new');
  });

  it('is in the main navigation next to Clusters', async () => {
    setup('viewer');
    renderApp('/templates');

    const nav = await screen.findByRole('navigation', { name: 'Main' });
    const links = within(nav).getAllByRole('link').map((link) => link.textContent?.trim());
    expect(links.indexOf('Node templates')).toBe(links.indexOf('Clusters') + 1);
  });
});

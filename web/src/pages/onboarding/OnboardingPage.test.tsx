import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../api/types';
import { apiError, json, makeAccount, makeMe, makeScan, mockApi, placeholderAccount, renderApp, signIn } from '../../test/api';

const linkInfo = {
  external_id: 'so-external-123',
  cloudformation_template: 'AWSTemplateFormatVersion: "2010-09-09"',
  template_url: 'http://localhost/api/accounts/cloudformation.yaml',
  quick_create_url: 'https://console.aws.amazon.com/cloudformation/home#/stacks/quickcreate?param_ExternalId=so-external-123',
  provider: 'sim',
};

function setup(role: Role = 'owner', overrides: Parameters<typeof mockApi>[0] = {}) {
  signIn();
  let scanReads = 0;
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role, { route: 'onboarding', onboarding_dismissed: false })),
    'POST /api/accounts/link': () => json(linkInfo),
    'POST /api/accounts/verify': () => json(makeAccount({ status: 'scanning', last_sync_at: undefined })),
    'POST /api/accounts/keys': () => json(makeAccount({ name: 'Lab', method: 'keys', status: 'scanning' })),
    // First read: mid-scan; afterwards the scan has finished.
    'GET /api/accounts/acc-1/scan': () =>
      json(
        scanReads++ === 0
          ? makeScan({ status: 'scanning', phase: 'clusters', progress: 40, counts: { instances: 29, clusters: 0, volumes: 0, snapshots: 0 } })
          : makeScan(),
      ),
    'POST /api/org/onboarding': () => new Response(null, { status: 204 }),
    'GET /api/accounts': () => json({ items: [placeholderAccount] }),
    ...overrides,
  });
}

async function openProductionPath() {
  const user = userEvent.setup();
  renderApp('/onboarding');
  await user.click(await screen.findByRole('button', { name: 'Connect AWS account' }));
  await user.click(screen.getByRole('button', { name: /Production/ }));
  await screen.findByRole('textbox', { name: 'External ID' });
  return user;
}

describe('Onboarding wizard', () => {
  it('connects an account with the CloudFormation role and follows the scan to the dashboard', async () => {
    const { calls } = setup();
    const user = await openProductionPath();

    expect(screen.getByRole('heading', { name: 'Connect with an IAM role' })).toHaveFocus();
    expect(screen.getByRole('textbox', { name: 'External ID' })).toHaveValue('so-external-123');
    expect(screen.getByRole('link', { name: 'Open AWS CloudFormation console' })).toHaveAttribute('href', linkInfo.quick_create_url);
    expect(screen.getByRole('list', { name: 'Onboarding progress' })).toHaveTextContent('Connect');

    await user.type(screen.getByLabelText('AWS account ID'), '123456789012');
    // The stack's role name is fixed, so its ARN is suggested from the account ID.
    expect(screen.getByLabelText('Role ARN')).toHaveValue('arn:aws:iam::123456789012:role/SpotOptimizer');
    await user.selectOptions(screen.getByLabelText('Region'), 'eu-west-1');
    await user.click(screen.getByRole('button', { name: 'Verify and connect' }));

    expect(await screen.findByRole('heading', { name: 'Production is connected' })).toBeInTheDocument();
    expect(calls.find((call) => call.url.pathname === '/api/accounts/verify')?.body).toEqual({
      aws_account_id: '123456789012',
      role_arn: 'arn:aws:iam::123456789012:role/SpotOptimizer',
      region: 'eu-west-1',
      name: 'Production',
    });
    expect(await screen.findByText('Discovering EKS clusters')).toBeInTheDocument();
    expect(screen.getByRole('progressbar', { name: 'Scan progress' })).toHaveAttribute('value', '40');

    expect(await screen.findByText('Scan complete', {}, { timeout: 3000 })).toBeInTheDocument();
    expect(screen.getByRole('progressbar', { name: 'Scan progress' })).toHaveAttribute('value', '100');
    expect(screen.getByText('EKS clusters').nextElementSibling).toHaveTextContent('3');

    await user.click(screen.getByRole('button', { name: 'Go to dashboard' }));
    expect(await screen.findByRole('heading', { name: 'Dashboard' })).toBeInTheDocument();
    expect(calls.find((call) => call.url.pathname === '/api/org/onboarding')?.body).toEqual({ state: 'completed' });
  });

  it('checks the account ID and role ARN before calling the server', async () => {
    const { calls } = setup();
    const user = await openProductionPath();

    await user.type(screen.getByLabelText('AWS account ID'), '1234');
    await user.type(screen.getByLabelText('Role ARN'), 'arn:aws:iam::999999999999:role/SpotOptimizer');
    await user.click(screen.getByRole('button', { name: 'Verify and connect' }));
    expect(await screen.findByText('An AWS account ID is exactly 12 digits.')).toBeInTheDocument();

    await user.clear(screen.getByLabelText('AWS account ID'));
    await user.type(screen.getByLabelText('AWS account ID'), '123456789012');
    await user.click(screen.getByRole('button', { name: 'Verify and connect' }));
    expect(await screen.findByText('This role belongs to a different AWS account than the ID above.')).toBeInTheDocument();
    expect(calls.some((call) => call.url.pathname === '/api/accounts/verify')).toBe(false);
  });

  it('shows why the role could not be assumed under the role ARN', async () => {
    setup('admin', {
      'POST /api/accounts/verify': () => apiError(422, 'validation_error', 'Access denied: check the trust policy.', 'role_arn'),
    });
    const user = await openProductionPath();

    await user.type(screen.getByLabelText('AWS account ID'), '123456789012');
    await user.click(screen.getByRole('button', { name: 'Verify and connect' }));

    const roleArn = screen.getByLabelText('Role ARN');
    await waitFor(() => expect(roleArn).toHaveAccessibleDescription('Access denied: check the trust policy.'));
    expect(roleArn).toHaveAttribute('aria-invalid', 'true');
  });

  it('connects a lab account with access keys', async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/onboarding?add=1');

    await user.click(await screen.findByRole('button', { name: /Lab/ }));
    await user.type(screen.getByLabelText('Access key ID'), 'AKIAIOSFODNN7EXAMPLE');
    await user.type(screen.getByLabelText('Secret access key'), 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    await user.click(screen.getByRole('button', { name: 'Verify and connect' }));

    expect(await screen.findByRole('heading', { name: 'Lab is connected' })).toBeInTheDocument();
    expect(calls.find((call) => call.url.pathname === '/api/accounts/keys')?.body).toMatchObject({
      access_key_id: 'AKIAIOSFODNN7EXAMPLE',
      region: 'us-east-1',
      name: 'Lab',
    });
    // Adding another account leaves the organization's onboarding state alone.
    expect(screen.getByRole('button', { name: 'Back to cloud integrations' })).toBeInTheDocument();
    expect(calls.some((call) => call.url.pathname === '/api/org/onboarding')).toBe(false);
  });

  it('records a skip and lands on the empty dashboard', async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/onboarding');

    await user.click(await screen.findByRole('button', { name: 'Skip for now' }));

    expect(await screen.findByText('No cloud account connected yet')).toBeInTheDocument();
    expect(calls.find((call) => call.url.pathname === '/api/org/onboarding')?.body).toEqual({ state: 'skipped' });
  });

  it('tells a viewer to ask an admin and records nothing', async () => {
    const { calls } = setup('viewer');
    const user = userEvent.setup();
    renderApp('/onboarding');

    const card = (await screen.findByRole('heading', { name: /Welcome to Spot Optimizer/ })).parentElement as HTMLElement;
    expect(within(card).getByText(/Ask an owner or admin/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Connect AWS account' })).not.toBeInTheDocument();

    await user.click(screen.getByRole('button', { name: 'Continue to dashboard' }));
    expect(await screen.findByRole('heading', { name: 'Dashboard' })).toBeInTheDocument();
    expect(calls.some((call) => call.method === 'POST')).toBe(false);
  });
});

// End-to-end smoke test against a running server:
//   E2E_BASE_URL=http://127.0.0.1:8080 node e2e/run.mjs
// Signs up an organization, connects the simulator's AWS account through the onboarding wizard
// (production / IAM role path) and watches its scan finish, then checks the dashboard, Cloud
// integrations, the audit log, sign-out and sign-in, a viewer's read-only view and the
// "skip onboarding" path. With E2E_DEMO_EMAIL / E2E_DEMO_PASSWORD (the login `serve --demo`
// prints) it also signs in as the demo user and walks clusters → cluster → instance → waste →
// dashboard (KPIs, charts, heatmap, stability, account switcher kept in the URL), then runs
// "Optimize Now" on the largest cluster as a dry run and for real, then checks the agent badges,
// a connected cluster's agent card and the "Add cluster" wizard up to a kubectl command, then
// creates a node template through its wizard, moves the default to a copy and back, links it
// in a cluster's policy (and finds that save in the policy's history) and sees its deletion
// refused, cleans up two orphaned volumes (dry run, then for real with live per-item progress)
// and forces a cluster to on-demand (countdown, revoke), then checks the notification settings
// (a metadata-address webhook refused, a test notification's attempts) and makes a weekly report. With E2E_ADMIN_EMAIL / E2E_ADMIN_PASSWORD (`serve --admin-email … --admin-password
// …`) it signs in as the platform super-admin and walks the AI model page (reject a bad ONNX
// upload, upload a valid one whose graduation is refused until the Lab tested it) and the Lab
// (a live switch with its timed phases, the safety checklist, an A/B test with its verdict), then
// the console and last the emergency override (every node switched to on-demand live, reverted).
// Screenshots go to e2e/artifacts/ (recreated on every run). Exits non-zero unless every step
// passes. Needs the server's embedded cloud simulator.
import { execSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { policyHibernationSteps } from './policy-hibernation.mjs';
import { notificationsReportsSteps } from './notifications-reports.mjs';

const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
const ONNX_TESTDATA = path.resolve(E2E_DIR, '../../onnx/testdata');
const STEP_TIMEOUT_MS = 15_000;

const results = [];

function finish() {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

function fatal(message) {
  console.error(`E2E setup failed: ${message}`);
  results.push({ name: 'setup', ok: false });
  finish();
}

const base = process.env.E2E_BASE_URL?.replace(/\/+$/, '');
if (!base) fatal('set E2E_BASE_URL, e.g. E2E_BASE_URL=http://127.0.0.1:8080');

try {
  const health = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
  if (!health.ok) fatal(`${base}/healthz answered ${health.status}`);
} catch (error) {
  fatal(`${base} is unreachable (${error.cause?.code ?? error.message})`);
}

function chromiumPath() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  try {
    return execSync('command -v chromium || command -v chromium-browser', { shell: '/bin/sh' }).toString().trim().split('\n')[0];
  } catch {
    return fatal('chromium not found; install it (apt-get install -y chromium) or set CHROMIUM_PATH');
  }
}

await rm(ARTIFACTS, { recursive: true, force: true });
await mkdir(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: chromiumPath(),
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const problems = [];

/** A fresh browser context (own storage) whose page errors and 5xx responses are recorded. */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const opened = await context.newPage();
  opened.setDefaultTimeout(STEP_TIMEOUT_MS);
  opened.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  opened.on('response', (response) => {
    if (response.status() >= 500) problems.push(`${response.status()} from ${response.request().method()} ${response.url()}`);
  });
  return opened;
}

const stamp = Date.now().toString(36);
const persona = (name) => ({
  org: `E2E ${name} ${stamp}`,
  email: `e2e+${name}-${stamp}@example.com`,
  password: `e2e-passphrase-${stamp}-Aa1!`,
});
const owner = persona('owner');
const skipper = persona('skipper');
const viewer = { email: `e2e+viewer-${stamp}@example.com`, password: `e2e-viewer-${stamp}-Aa1!` };
// Any 12-digit id verifies against the simulator; a fresh one per run avoids the 409 for an
// account another organization on the same server already linked. Masked as 1234-****-****.
const SIM_ACCOUNT_ID = `1234${String(Date.now()).slice(-8)}`;

let page = await openPage();
let shot = 0;

async function screenshot(name, { viewport = false } = {}) {
  shot += 1;
  const path = `${ARTIFACTS}${String(shot).padStart(2, '0')}-${name}.png`;
  // `viewport`: the visible part as it is scrolled (headless Chromium paints sandboxed
  // iframes, such as the report e-mail, only inside the viewport, not in full-page shots).
  if (viewport) {
    await page.screenshot({ path });
    return;
  }
  // Sticky headers are captured where they are: start full-page shots from the top.
  await page.evaluate(() => window.scrollTo(0, 0)).catch(() => undefined);
  await page.screenshot({ path, fullPage: true });
}

async function signUp(account) {
  await page.goto(`${base}/signup`);
  await page.getByRole('heading', { name: 'Create your organization' }).waitFor();
  await page.getByLabel('Organization name').fill(account.org);
  await page.getByLabel('Work email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
}

/** Calls the API directly with a token from the password grant (for setup the UI does not cover). */
async function apiAs(account, method, path, body) {
  const login = await fetch(`${base}/api/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: account.email, password: account.password }),
  });
  if (!login.ok) throw new Error(`login as ${account.email} answered ${login.status}`);
  const { access_token: token } = await login.json();
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

const mutatingButtons = /Re-sync|Rename|Disconnect|Connect another account/;

const steps = [
  ['sign up a new organization', async () => {
    await signUp(owner);
    await screenshot('signup-form');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/onboarding$/);
  }],
  ['onboarding wizard welcomes the new organization', async () => {
    await page.getByRole('heading', { name: `Welcome to Spot Optimizer, ${owner.org}` }).waitFor();
    await page.locator('.topbar').getByText(owner.org).waitFor();
    await screenshot('wizard-welcome');
    await page.getByRole('button', { name: 'Connect AWS account' }).click();
    await page.getByRole('heading', { name: 'How should Spot Optimizer connect?' }).waitFor();
    await screenshot('wizard-choose');
  }],
  ['production path shows the external ID and CloudFormation links', async () => {
    await page.getByRole('button', { name: /Production/ }).click();
    const externalId = page.getByRole('textbox', { name: 'External ID' });
    await externalId.waitFor();
    if (!(await externalId.inputValue())) throw new Error('external ID is empty');
    const quickCreate = page.getByRole('link', { name: 'Open AWS CloudFormation console' });
    if (!(await quickCreate.getAttribute('href'))?.startsWith('https://console.aws.amazon.com/cloudformation/')) {
      throw new Error('quick-create link does not open the CloudFormation console');
    }
    await page.getByRole('button', { name: 'Download template' }).waitFor();
  }],
  ['a role that cannot be assumed is reported on the form', async () => {
    await page.getByLabel('AWS account ID').fill(SIM_ACCOUNT_ID);
    await page.getByLabel('Role ARN').fill(`arn:aws:iam::${SIM_ACCOUNT_ID}:role/NoAccess`);
    await page.getByRole('button', { name: 'Verify and connect' }).click();
    await page.getByText(/Access denied/).waitFor();
    await screenshot('wizard-role-denied');
  }],
  ['verifying the simulated account starts a scan that completes', async () => {
    await page.getByLabel('Role ARN').fill(`arn:aws:iam::${SIM_ACCOUNT_ID}:role/SpotOptimizer`);
    await page.getByLabel('Account name').fill('Production');
    await page.getByLabel('Region').selectOption('us-east-1');
    await screenshot('wizard-role-form');
    await page.getByRole('button', { name: 'Verify and connect' }).click();
    await page.getByRole('heading', { name: 'Production is connected' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Scan complete' }).waitFor();
    await page.getByText('Discovery finished. Your inventory is ready.').waitFor();
    await screenshot('wizard-scan-complete');
  }],
  ['finishing opens the dashboard with the discovered inventory', async () => {
    await page.getByRole('button', { name: 'Go to dashboard' }).click();
    await page.waitForURL(/\/dashboard$/);
    await page.getByRole('heading', { name: 'Discovered inventory' }).waitFor();
    await page.getByText('Across 1 connected account').waitFor();
    const instances = await page.locator('.stat').filter({ hasText: 'EC2 instances' }).locator('dd').innerText();
    if (!(Number(instances.replace(/\D/g, '')) > 0)) throw new Error(`expected discovered instances, got "${instances}"`);
    await screenshot('dashboard-inventory');
  }],
  ['cloud integrations lists the account; rename and re-sync work', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Cloud integrations' }).click();
    await page.waitForURL(/\/settings\/cloud-integrations$/);
    const card = page.getByRole('article', { name: 'Production' });
    await card.getByText('1234-****-****').waitFor();
    await card.getByText('Active').waitFor();
    await card.getByRole('button', { name: 'Rename Production' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rename account' });
    await dialog.getByLabel('Account name').fill('Production (sim)');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    const renamed = page.getByRole('article', { name: 'Production (sim)' });
    await renamed.getByRole('button', { name: 'Re-sync' }).click();
    await page.getByText('Re-scanning Production (sim).').waitFor();
    await renamed.getByText('Active').waitFor();
    await renamed.getByRole('button', { name: 'Re-sync' }).and(page.locator(':enabled')).waitFor();
    await screenshot('cloud-integrations');
    await renamed.getByRole('button', { name: 'Disconnect Production (sim)' }).click();
    await page.getByRole('dialog', { name: 'Disconnect account?' }).waitFor();
    await screenshot('disconnect-confirm');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('dialog').waitFor({ state: 'detached' });
  }],
  ['audit log lists the signup and the account link', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit Logs' }).click();
    await page.waitForURL(/\/audit-logs$/);
    const table = page.getByRole('table', { name: 'Audit log entries' });
    await table.getByText('account.verify').first().waitFor();
    await table.getByText(/signup/i).first().waitFor();
    await screenshot('audit-log');
    await table.getByText(/signup/i).first().click();
    await page.getByRole('dialog').getByText('Entry hash').waitFor();
    await screenshot('audit-entry');
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
  }],
  ['audit chain verifies', async () => {
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.getByText('Audit chain intact').waitFor();
  }],
  ['reload keeps the session (refresh token, SPA fallback)', async () => {
    await page.reload();
    await page.getByRole('table', { name: 'Audit log entries' }).waitFor();
  }],
  ['sign out', async () => {
    await page.getByRole('button', { name: owner.email }).click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login$/);
    const stored = await page.evaluate(() => localStorage.getItem('spot.refresh_token'));
    if (stored !== null) throw new Error('refresh token still stored after sign out');
    await page.goto(`${base}/dashboard`);
    await page.waitForURL(/\/login$/);
    await screenshot('signed-out');
  }],
  ['sign back in goes straight to the dashboard', async () => {
    await page.getByLabel('Email').fill(owner.email);
    await page.getByLabel('Password').fill(owner.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/dashboard$/);
    await page.getByRole('heading', { name: 'Discovered inventory' }).waitFor();
  }],
  ['a viewer sees accounts without mutating controls', async () => {
    const invite = await apiAs(owner, 'POST', '/api/org/invites', { email: viewer.email, role: 'viewer' });
    page = await openPage();
    await page.goto(`${base}/invite/accept?token=${encodeURIComponent(invite.token)}`);
    await page.getByLabel('Password').fill(viewer.password);
    await page.getByRole('button', { name: 'Accept invitation' }).click();
    await page.waitForURL(/\/dashboard$/);
    await page.goto(`${base}/settings/cloud-integrations`);
    await page.getByRole('article', { name: 'Production (sim)' }).getByText('Active').waitFor();
    const mutating = await page.getByRole('button', { name: mutatingButtons }).count();
    const links = await page.getByRole('link', { name: mutatingButtons }).count();
    if (mutating + links > 0) throw new Error(`viewer sees ${mutating + links} mutating controls`);
    await screenshot('viewer-cloud-integrations');
  }],
  ['a viewer sees no Optimize Now and a read-only optimization policy', async () => {
    await page.goto(`${base}/clusters`);
    const table = page.getByRole('table', { name: 'Clusters' });
    await bodyRows(table).first().waitFor();
    const shortcuts = await page.getByRole('link', { name: /Optimize Now/ }).count();
    if (shortcuts > 0) throw new Error(`viewer sees ${shortcuts} Optimize Now links in the registry`);
    await bodyRows(table).first().click();
    await page.waitForURL(/\/clusters\/[^/?]+$/);
    const policy = page.getByRole('form', { name: 'Optimization policy' });
    await policy.getByText('Only owners and admins can change the policy.').waitFor();
    if (!(await policy.getByLabel('Aggressiveness').isDisabled())) throw new Error('the policy form is editable for a viewer');
    if ((await page.getByRole('button', { name: /Optimize Now|Save policy/ }).count()) > 0) throw new Error('viewer sees Optimize Now or Save policy');
    await page.goto(`${page.url()}?optimize=1`);
    await page.getByRole('table', { name: 'Nodes' }).waitFor();
    if ((await page.getByRole('dialog').count()) > 0) throw new Error('?optimize=1 opened the dialog for a viewer');
    await screenshot('viewer-cluster-detail');
  }],
  ['skipping onboarding shows the empty state', async () => {
    page = await openPage();
    await signUp(skipper);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/onboarding$/);
    await page.getByRole('button', { name: 'Skip for now' }).click();
    await page.waitForURL(/\/dashboard$/);
    await page.getByText('No cloud account connected yet').waitFor();
    await screenshot('skipped-dashboard');
    await page.goto(`${base}/`);
    await page.waitForURL(/\/dashboard$/);
  }],
];

const demo = { email: process.env.E2E_DEMO_EMAIL, password: process.env.E2E_DEMO_PASSWORD };

/** Data rows of a table (the header row excluded). */
const bodyRows = (table) => table.locator('tbody tr');

/** A KPI tile's number ("$12,345" → 12345, "62%" → 62). */
async function kpiValue(label) {
  const text = await page.getByRole('region', { name: 'Headline numbers' }).locator('.stat').filter({ hasText: label }).locator('.stat__value').innerText();
  return Number(text.replace(/[^\d.]/g, ''));
}

/** Every dashboard card loaded without error: non-zero KPIs, an SVG in each chart, the heatmap grid. */
async function checkDashboard() {
  await page.getByRole('region', { name: 'Headline numbers' }).waitFor();
  for (const label of ['Monthly spend', 'Potential savings', 'Spot share']) {
    const value = await kpiValue(label);
    if (!(value > 0)) throw new Error(`KPI "${label}" is ${value}`);
  }
  const grade = await page.getByRole('region', { name: 'Headline numbers' }).locator('.stat').filter({ hasText: 'Efficiency grade' }).locator('.badge').innerText();
  // The badge reads "Efficiency grade C" to screen readers; the letter is last.
  if (!/(^|\s)[A-F]$/.test(grade.trim())) throw new Error(`efficiency grade is "${grade}"`);
  const card = (title) => page.locator('section.card').filter({ has: page.getByRole('heading', { name: title, exact: true }) });
  for (const title of ['Savings over time', 'Resource gap', 'Fleet composition']) {
    await card(title).locator('figure svg').first().waitFor();
    await card(title).getByRole('img').first().waitFor();
  }
  await card('Stability').getByRole('meter', { name: 'Stability index' }).locator('svg').waitFor();
  const heatmap = card('Activity heatmap').getByRole('table', { name: /Activity by hour of the week/ });
  await heatmap.waitFor();
  const cells = await heatmap.locator('td').count();
  if (cells !== 168) throw new Error(`heatmap has ${cells} cells, expected 168`);
  if ((await heatmap.locator('td[data-state]').count()) === 0) throw new Error('heatmap has no data');
  await card('Activity heatmap').getByRole('complementary', { name: 'Hibernation opportunity' }).getByText(/\$[\d,.]+/).waitFor();
  if ((await page.getByRole('alert').count()) > 0) throw new Error(`a dashboard card failed: ${await page.getByRole('alert').first().innerText()}`);
}

const admin = { email: process.env.E2E_ADMIN_EMAIL, password: process.env.E2E_ADMIN_PASSWORD };
const SHIPPED_MODEL = 'shipped:risk-v1';
const uploadedModel = `e2e always risky ${stamp}`;

/** The "Active model" card of the AI model page. */
const activeModelCard = () => page.locator('section.card').filter({ has: page.getByRole('heading', { name: 'Active model', exact: true }) });

async function expectActiveModel(id) {
  await activeModelCard().locator('dd.mono').filter({ hasText: new RegExp(`^${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }).waitFor();
  if ((await activeModelCard().getByText('Degraded — static heuristic in use').count()) > 0) {
    throw new Error(`the active model is degraded: ${await activeModelCard().getByRole('alert').innerText()}`);
  }
}

const registryRow = (name) => page.getByRole('table', { name: 'Risk model registry' }).locator('tbody tr').filter({ hasText: name });

const adminSteps = [
  ['platform admin sees the shipped model active on the AI model page', async () => {
    page = await openPage();
    await page.goto(`${base}/login`);
    await page.getByLabel('Email').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/(dashboard|onboarding)$/);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('group', { name: 'Platform' }).getByRole('link', { name: 'AI model' }).click();
    await page.waitForURL(/\/admin\/risk-model$/);
    await page.getByRole('heading', { name: 'AI model', level: 1 }).waitFor();
    await expectActiveModel(SHIPPED_MODEL);
    await activeModelCard().locator('.badge').filter({ hasText: /^Serving$/ }).waitFor();
    await activeModelCard().getByRole('list', { name: 'Models in use by actors' }).getByText(SHIPPED_MODEL).waitFor();
    await screenshot('admin-risk-model');
  }],
  ['an ONNX file that breaks the contract is rejected with the reason', async () => {
    await page.getByLabel('ONNX file').setInputFiles(path.join(ONNX_TESTDATA, 'wrong_inputs.onnx'));
    await page.getByRole('button', { name: 'Upload and validate' }).click();
    await page.getByText(/^model rejected: .*features/).waitFor();
    if ((await page.getByLabel('ONNX file').getAttribute('aria-invalid')) !== 'true') throw new Error('the file input is not marked invalid');
    await screenshot('admin-risk-model-rejected');
  }],
  ['a valid model uploads; graduating it before the Lab tested it is refused, showing the failing checks', async () => {
    await page.getByLabel('ONNX file').setInputFiles(path.join(ONNX_TESTDATA, 'always_risky.onnx'));
    await page.getByLabel('Name (optional)').fill(uploadedModel);
    await page.getByRole('button', { name: 'Upload and validate' }).click();
    await page.getByRole('status').getByText(`${uploadedModel} passed validation. Graduate it to make it active.`).waitFor();
    await registryRow(uploadedModel).locator('.badge').filter({ hasText: /^Validated$/ }).waitFor();
    await registryRow(uploadedModel).getByRole('button', { name: `Graduate ${uploadedModel}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Graduate this model?' });
    await dialog.getByText(/every account and cluster actor/).waitFor();
    // The dialog shows the Lab's checklist; with checks failing the button stays closed.
    const checks = dialog.getByRole('list', { name: 'Safety checklist' });
    await checks.waitFor();
    await dialog.getByText(/checks fail/).waitFor();
    await screenshot('admin-risk-model-graduate-confirm');
    if (!(await dialog.getByRole('button', { name: 'Graduate model' }).isDisabled())) throw new Error('graduation is open while the checklist fails');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expectActiveModel(SHIPPED_MODEL);
    await registryRow(uploadedModel).locator('.badge').filter({ hasText: /^Validated$/ }).waitFor();
    await screenshot('admin-risk-model-graduation-refused');
  }],
  ['the Lab switches a demo node live with timed phases and shows the checklist', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('group', { name: 'Platform' }).getByRole('link', { name: 'The Lab' }).click();
    await page.waitForURL(/\/admin\/lab$/);
    const form = page.getByRole('form', { name: 'Live switch' });
    await form.getByLabel('Target model').selectOption({ label: `${uploadedModel} (validated)` });
    await form.getByRole('button', { name: /Execute live switch/ }).click();
    const phases = page.getByRole('list', { name: 'Switch phases' });
    // The switch is queued first ("Total" shows before any phase ran): wait for all 8 phases
    // to end (done, or skipped for a node without a data volume) or for one to fail.
    await page.waitForFunction(() => {
      const list = document.querySelector('ol[aria-label="Switch phases"]');
      if (!list) return false;
      const ended = list.querySelectorAll('.lab-phase--done, .lab-phase--skipped').length;
      return ended === 8 || list.querySelector('.lab-phase--failed') !== null;
    }, null, { timeout: 150_000 }).catch(() => {});
    // Every phase ran (the volume phases are skipped for a node without a data volume).
    const ran = (await phases.locator('.lab-phase--done').count()) + (await phases.locator('.lab-phase--skipped').count());
    if (ran !== 8) throw new Error(`${ran} of 8 phases ran: ${await phases.innerText()}`);
    await screenshot('admin-lab-switch');
    const graduation = page.locator('section.card').filter({ has: page.getByRole('heading', { name: 'Model graduation' }) });
    await graduation.getByLabel('Model').selectOption({ label: `${uploadedModel} (validated)` });
    await graduation.getByRole('list', { name: 'Safety checklist' }).getByText('Boot time < 60 s').waitFor();
    if (!(await graduation.getByRole('button', { name: 'Graduate to production' }).isDisabled())) throw new Error('graduation is open without an A/B test');
  }],
  ['the Lab runs an A/B test with side-by-side charts and a verdict', async () => {
    const ab = page.getByRole('form', { name: 'A/B test' });
    await ab.getByLabel(/Model A/).selectOption({ label: 'risk-v1 (shipped)' });
    await ab.getByLabel(/Model B/).selectOption({ label: uploadedModel });
    await ab.getByLabel('Decide every (seconds)').fill('5');
    await ab.getByRole('button', { name: 'Start A/B test' }).click();
    await page.getByRole('table', { name: 'A/B tests' }).getByText(`risk-v1 (shipped) vs ${uploadedModel}`).waitFor();
    await page.getByRole('img', { name: 'Hourly cost of each set' }).waitFor();
    await page.locator('table.lab-verdict').getByText('Cost against on-demand').waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Stop test' }).click();
    await page.locator('.badge').filter({ hasText: /^stopped$/ }).first().waitFor();
    await screenshot('admin-lab-ab-test');
  }],
];

const demoSteps = [
  ['demo user sees at least three clusters', async () => {
    page = await openPage();
    await page.goto(`${base}/login`);
    await page.getByLabel('Email').fill(demo.email);
    await page.getByLabel('Password').fill(demo.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/(dashboard|onboarding)$/);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clusters' }).click();
    await page.waitForURL(/\/clusters$/);
    const table = page.getByRole('table', { name: 'Clusters' });
    await bodyRows(table).first().waitFor();
    const count = await bodyRows(table).count();
    if (count < 3) throw new Error(`expected at least 3 clusters, got ${count}`);
    const shown = await page.getByRole('region', { name: 'All clusters' }).locator('.stat__value').first().innerText();
    if (Number(shown) !== count) throw new Error(`status bar counts ${shown} clusters, table shows ${count}`);
    // Every row: 24-hour sparklines beside the node and pod counts, and the cost trend beside the run rate.
    for (let index = 0; index < count; index += 1) {
      const row = bodyRows(table).nth(index);
      const name = await row.locator('.cell-title').first().innerText();
      for (const noun of ['Nodes', 'Pods']) {
        const spark = row.getByRole('img', { name: new RegExp(`^${noun}, last 24 hours: `) });
        if ((await spark.count()) !== 1) throw new Error(`${name}: no ${noun.toLowerCase()} sparkline`);
        const label = await spark.getAttribute('aria-label');
        if (!/(latest \d[\d,]*|no data)/.test(label)) throw new Error(`${name}: sparkline says "${label}"`);
        if ((await spark.evaluate((svg) => svg.tagName.toLowerCase())) !== 'svg') throw new Error(`${name}: ${noun} sparkline is not an svg`);
        const box = await spark.boundingBox();
        if (!box || box.width < 16 || box.height < 8) throw new Error(`${name}: ${noun} sparkline is not visible`);
      }
      const trend = row.locator('td:nth-child(5) .trend');
      if ((await trend.count()) !== 1) throw new Error(`${name}: no cost trend beside the run rate`);
      const shownTrend = (await trend.locator('[aria-hidden="true"]').innerText()).replace(/\s+/g, ' ');
      if (!/^([▲▼] [\d,.]+%|±0%|—)$/.test(shownTrend)) throw new Error(`${name}: cost trend reads "${shownTrend}"`);
      const spoken = await trend.locator('.sr-only').innerText();
      if (!spoken.startsWith('24-hour cost trend: ')) throw new Error(`${name}: cost trend announces "${spoken}"`);
    }
    // The registry stays inside its card at 1280px.
    const overflow = await table.evaluate((element) => {
      const wrap = element.closest('.table-wrap');
      return wrap ? wrap.scrollWidth - wrap.clientWidth : 0;
    });
    if (overflow > 1) throw new Error(`the clusters table overflows its card by ${overflow}px`);
    await screenshot('demo-clusters');
  }],
  ['sorting by run rate puts the most expensive cluster first', async () => {
    const table = page.getByRole('table', { name: 'Clusters' });
    const header = table.getByRole('columnheader', { name: /Monthly run rate/ });
    await header.getByRole('button').click();
    await header.getByRole('button').click();
    // The sort lives in the URL and React applies it in a transition: wait for it, do not race it.
    await header
      .and(page.locator('[aria-sort="descending"]'))
      .waitFor({ timeout: 5000 })
      .catch(() => {
        throw new Error('run rate column is not sorted descending');
      });
    const costs = await bodyRows(table).locator('td:nth-child(5) .cell-title').allInnerTexts();
    const values = costs.map((cost) => Number(cost.replace(/[^\d.]/g, '')));
    if (values.some((value, index) => index > 0 && value > values[index - 1])) throw new Error(`run rates not descending: ${costs.join(', ')}`);
  }],
  ['a cluster shows its KPIs, node groups and nodes', async () => {
    const table = page.getByRole('table', { name: 'Clusters' });
    await bodyRows(table).first().click();
    await page.waitForURL(/\/clusters\/[^/]+$/);
    await page.getByText('Savings already captured').waitFor();
    await page.getByRole('img', { name: /^Nodes, last 24 hours: / }).waitFor();
    await page.locator('.stat').filter({ hasText: 'Monthly run rate' }).locator('.trend').waitFor();
    await page.getByRole('table', { name: 'Node groups' }).or(page.getByText('This cluster reports no managed node groups.')).waitFor();
    const nodes = page.getByRole('table', { name: 'Nodes' });
    await bodyRows(nodes).first().waitFor();
    await screenshot('demo-cluster-detail');
  }],
  ['an instance shows its alternative spot pools and history', async () => {
    const nodes = page.getByRole('table', { name: 'Nodes' });
    const instanceId = await bodyRows(nodes).first().locator('.mono').first().innerText();
    await bodyRows(nodes).first().click();
    const dialog = page.getByRole('dialog', { name: instanceId });
    const alternatives = dialog.getByRole('table', { name: 'Alternative spot pools' });
    await bodyRows(alternatives).first().waitFor();
    const count = await bodyRows(alternatives).count();
    if (count < 1 || count > 5) throw new Error(`expected 1–5 alternative pools, got ${count}`);
    await dialog.getByRole('list', { name: 'Instance history' }).or(dialog.getByText('No changes recorded yet.')).waitFor();
    await screenshot('demo-instance');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  }],
  ['waste lists potential savings', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Waste' }).click();
    await page.waitForURL(/\/waste$/);
    // The overall total appears once all three lists have loaded.
    await page.locator('.stat__value').filter({ hasText: /\$[\d,.]+\/mo/ }).waitFor();
    for (const title of ['Unregistered instances', 'Orphaned volumes', 'Unused snapshots']) {
      await page.getByRole('heading', { name: title }).waitFor();
    }
    if ((await page.getByRole('alert').count()) > 0) throw new Error('a waste list failed to load');
    await screenshot('demo-waste');
  }],
  ['dashboard shows non-zero KPIs and renders every chart', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' }).click();
    await page.waitForURL(/\/dashboard$/);
    await checkDashboard();
    await screenshot('demo-dashboard');
  }],
  ['the account switcher scopes the dashboard and survives a reload', async () => {
    const switcher = page.getByRole('combobox', { name: 'Account' });
    const options = await switcher.locator('option').evaluateAll((nodes) => nodes.map((node) => ({ value: node.value, label: node.textContent })));
    if (options[0]?.label !== 'All accounts' || options.length < 2) throw new Error(`unexpected account options: ${JSON.stringify(options)}`);
    const spendAll = await kpiValue('Monthly spend');
    const account = options[1];
    const scoped = page.waitForResponse((response) => response.url().includes('/api/dashboard/kpis') && response.url().includes(`account_id=${account.value}`));
    await switcher.selectOption(account.value);
    await page.waitForURL((url) => url.searchParams.get('account') === account.value);
    await scoped;
    await page.reload();
    await page.getByRole('region', { name: 'Headline numbers' }).waitFor();
    if ((await switcher.inputValue()) !== account.value) throw new Error('the selected account did not survive a reload');
    await checkDashboard();
    const spendOne = await kpiValue('Monthly spend');
    if (options.length > 2 && !(spendOne <= spendAll)) throw new Error(`one account spends ${spendOne}, more than all accounts (${spendAll})`);
    await screenshot('demo-dashboard-one-account');
    await switcher.selectOption('');
    await page.waitForURL((url) => !url.searchParams.has('account'));
  }],
  ['spot nodes of the largest cluster show their interruption risk', async () => {
    await page.goto(`${base}/clusters?sort=-cost`);
    const table = page.getByRole('table', { name: 'Clusters' });
    await bodyRows(table).first().waitFor();
    await bodyRows(table).first().locator('.cell-title').first().click();
    await page.waitForURL(/\/clusters\/[^/?]+$/);
    const nodes = page.getByRole('table', { name: 'Nodes' });
    await bodyRows(nodes).first().waitFor();
    const risks = await nodes.locator('.risk .badge').allInnerTexts();
    if (risks.length === 0) throw new Error('no spot node shows a risk band');
    const malformed = risks.filter((text) => !/^(Interruption risk\s+)?(SAFE|CAUTION|AVOID)(\s+\d+(\.\d)?%)?$/.test(text.trim()));
    if (malformed.length > 0) throw new Error(`unexpected risk badges: ${malformed.join(', ')}`);
  }],
  ['Optimize Now as a dry run plans actions that would execute', async () => {
    await page.getByRole('button', { name: 'Optimize Now' }).click();
    const dialog = page.getByRole('dialog', { name: /^Optimize / });
    await dialog.getByRole('checkbox', { name: 'Dry run (plan only, change nothing)' }).check();
    await screenshot('demo-optimize-dialog');
    await dialog.getByRole('button', { name: 'Start dry run' }).click();
    await dialog.waitFor({ state: 'detached' });
    const panel = page.getByRole('region', { name: 'Optimization job' });
    await panel.getByRole('progressbar', { name: 'Job progress' }).waitFor();
    // Jobs wait in the queue for a worker; executing the plan is quick in dry-run mode.
    await panel.locator('.badge').filter({ hasText: /^(Succeeded|Failed)$/ }).waitFor({ timeout: 120_000 });
    if ((await panel.locator('.badge').filter({ hasText: /^Failed$/ }).count()) > 0) throw new Error(`dry run failed: ${await panel.getByRole('alert').innerText()}`);
    await page.getByRole('status').getByText(/^Dry run finished/).waitFor();
    const actions = panel.getByRole('table', { name: 'Planned actions' });
    await bodyRows(actions).first().waitFor();
    const statuses = await bodyRows(actions).locator('td:last-child .badge').allInnerTexts();
    const kinds = await bodyRows(actions).locator('td:nth-child(2) .cell-title').allInnerTexts();
    // Node actions would all execute; rightsizing is recommend-only and reported as skipped.
    const unexpected = statuses.filter((status, index) => status !== 'Would execute' && !(status === 'Skipped' && /^Rightsize/.test(kinds[index] ?? '')));
    if (!statuses.includes('Would execute') || unexpected.length > 0) {
      throw new Error(`dry-run statuses: ${statuses.map((status, index) => `${kinds[index]}: ${status}`).join(', ')}`);
    }
    await screenshot('demo-optimize-dry-run');
    // "Why not consolidated": the planner's decision and reason for every node of the cluster.
    const decisions = panel.getByRole('region', { name: /^Node decisions \(\d+\)$/ });
    await decisions.waitFor();
    const table = decisions.getByRole('table', { name: 'Node decisions' });
    const rows = await bodyRows(table).count();
    const heading = await decisions.getByRole('heading', { name: /^Node decisions/ }).innerText();
    if (rows === 0 || heading !== `Node decisions (${rows})`) throw new Error(`node decisions: ${heading}, ${rows} rows`);
    const badges = await bodyRows(table).locator('.badge').allInnerTexts();
    if (badges.length < rows) throw new Error(`a node without a decision: ${badges.join(', ')}`);
    const summary = await decisions.innerText();
    if (!/\d+ nodes?: /.test(summary)) throw new Error(`no node decision summary: ${summary.slice(0, 200)}`);
    await decisions.scrollIntoViewIfNeeded();
    await screenshot('demo-optimize-node-decisions');
  }],
  ['Optimize Now for real applies the plan and reports realised savings', async () => {
    await page.getByRole('button', { name: 'Optimize Now' }).click();
    const dialog = page.getByRole('dialog', { name: /^Optimize / });
    if (await dialog.getByRole('checkbox', { name: 'Dry run (plan only, change nothing)' }).isChecked()) throw new Error('dry run is pre-ticked');
    await dialog.getByRole('button', { name: 'Start optimization' }).click();
    await dialog.waitFor({ state: 'detached' });
    const panel = page.getByRole('region', { name: 'Optimization job' });
    await panel.locator('.badge').filter({ hasText: /^Execute$/ }).waitFor();
    // Every replacement waits until its new node runs: allow for the queue and the launches.
    await panel.locator('.badge').filter({ hasText: /^(Succeeded|Failed)$/ }).waitFor({ timeout: 240_000 });
    if ((await panel.locator('.badge').filter({ hasText: /^Failed$/ }).count()) > 0) throw new Error(`optimization failed: ${await panel.getByRole('alert').innerText()}`);
    await page.getByRole('status').getByText(/^Optimization finished/).waitFor();
    const statuses = await bodyRows(panel.getByRole('table', { name: 'Planned actions' })).locator('td:last-child .badge').allInnerTexts();
    if (!statuses.includes('Applied')) throw new Error(`no action was applied: ${statuses.join(', ')}`);
    const realised = await panel.locator('.stat').filter({ hasText: 'Realised savings' }).locator('.stat__value').innerText();
    if (!(Number(realised.replace(/[^\d.]/g, '')) > 0)) throw new Error(`realised savings are ${realised}`);
    const jobs = page.getByRole('table', { name: 'Recent jobs' });
    await bodyRows(jobs).nth(1).waitFor().catch(() => {
      throw new Error('the jobs list does not show both jobs');
    });
    await screenshot('demo-optimize-executed');
  }],
];

/**
 * The in-cluster agent (after the optimizations, which need the demo's connected agents): each
 * demo cluster's badge, a connected cluster's agent card, then the "Add cluster" wizard up to a
 * kubectl command with a fresh token and the sonar waiting for its first heartbeat. Demo clusters
 * already run a simulated agent and rotating their token would disconnect it, so the wizard
 * takes a cluster without an agent, or registers one by name.
 */
const agentSteps = [
  ['every demo cluster shows its agent status', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clusters' }).click();
    await page.waitForURL(/\/clusters$/);
    const table = page.getByRole('table', { name: 'Clusters' });
    await bodyRows(table).first().waitFor();
    const count = await bodyRows(table).count();
    for (let index = 0; index < count; index += 1) {
      const row = bodyRows(table).nth(index);
      const name = await row.locator('.cell-title').first().innerText();
      if ((await row.locator('.agent-badge').count()) !== 1) throw new Error(`${name}: no agent badge`);
    }
    const connected = await table.locator('.agent-badge[data-status="connected"]').count();
    if (connected === 0) throw new Error('no demo cluster shows a connected agent');
    // The list carries no heartbeat time: the next live agent.heartbeat (every 30 s) adds its age.
    await table
      .locator('.agent-badge[data-status="connected"]')
      .filter({ hasText: /last heartbeat (just now|\d+s ago)/ })
      .first()
      .waitFor({ timeout: 45_000 })
      .catch(() => {
        throw new Error('no live agent.heartbeat reached the cluster list within 45 s');
      });
    await screenshot('demo-agent-badges');
  }],
  ['a connected cluster shows its agent card', async () => {
    const table = page.getByRole('table', { name: 'Clusters' });
    await bodyRows(table).filter({ has: page.locator('.agent-badge[data-status="connected"]') }).first().click();
    await page.waitForURL(/\/clusters\/[^/]+$/);
    const card = page.locator('section.card').filter({ has: page.getByRole('heading', { name: 'Agent', exact: true }) });
    await card.getByText('Agent version').waitFor();
    await card.locator('.agent-badge[data-status="connected"]').waitFor();
    const version = await card.locator('dt', { hasText: 'Agent version' }).locator('xpath=following-sibling::dd').innerText();
    if (version.trim() === '—') throw new Error('the connected agent reports no version');
    await card.getByRole('button', { name: 'Rotate token' }).waitFor();
    await screenshot('demo-agent-card');
  }],
  ['the Add cluster wizard shows a kubectl command with a new token', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clusters' }).click();
    await page.getByRole('link', { name: '+ Add cluster' }).click();
    await page.waitForURL(/\/clusters\/add$/);
    await page.getByRole('heading', { name: 'Which cluster?' }).waitFor();
    await page.getByRole('radio').first().waitFor();
    await screenshot('demo-add-cluster');
    const free = page.locator('.cluster-option').filter({ has: page.locator('.agent-badge[data-status="not_installed"]') });
    let clusterName;
    if ((await free.count()) > 0) {
      clusterName = await free.first().locator('.cell-title').innerText();
      await free.first().getByRole('radio').check();
      await page.getByRole('button', { name: 'Connect', exact: true }).click();
    } else {
      clusterName = `e2e-agent-${stamp}`;
      await page.getByRole('button', { name: 'Register by name' }).click();
      const form = page.getByRole('form', { name: 'Register a cluster' });
      await form.getByLabel('Cluster name').fill(clusterName);
      await form.getByRole('button', { name: 'Register and connect' }).click();
    }
    await page.getByRole('heading', { name: `Install the agent on ${clusterName}` }).waitFor();
    await page.getByText('This token is shown once').waitFor();
    await page.getByRole('tab', { name: 'kubectl' }).click();
    const command = await page.getByLabel('kubectl install command').innerText();
    const prefix = (await page.locator('.callout .mono').first().innerText()).trim();
    if (!/kubectl/.test(command)) throw new Error(`the kubectl tab shows "${command}"`);
    if (prefix.length < 4 || !command.includes(prefix)) throw new Error(`the command does not carry the token (prefix ${prefix}): ${command}`);
    await page.getByRole('region', { name: 'Agent permissions' }).getByText(/outbound HTTPS/).waitFor();
    await screenshot('demo-add-cluster-kubectl');
    await page.getByRole('button', { name: 'I ran it: wait for the agent' }).click();
    const sonar = page.getByRole('status', { name: 'Agent connection' });
    await sonar.getByText('Waiting for first heartbeat…').waitFor();
    await screenshot('demo-add-cluster-waiting');
  }],
];

/**
 * Node templates as the demo owner: create one through the wizard (its live estimate prices
 * pools), move the default to a copy and back, link it in a cluster's policy card, then see its deletion
 * refused with the cluster named.
 */
const templateName = `e2e graviton ${stamp}`;
let templateCluster;
const copyName = `${templateName} (copy)`;
const rowOf = (name) => page.getByRole('table', { name: 'Node templates' }).locator('tbody tr').filter({ has: page.getByRole('link', { name, exact: true }) });
const templateRow = () => rowOf(templateName);
const copyRow = () => rowOf(copyName);

const templateSteps = [
  ['the template wizard creates a template and prices it live', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Node templates' }).click();
    await page.waitForURL(/\/templates$/);
    await page.getByRole('heading', { name: 'Node templates', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Create template' }).first().click();
    await page.waitForURL(/\/templates\/new$/);
    await page.getByLabel('Name', { exact: true }).fill(templateName);
    await page.getByLabel('Description (optional)').fill('Stateless services on Graviton spot capacity');
    await page.getByRole('button', { name: 'Next: Instances' }).click();
    await page.getByRole('button', { name: 'Add m7g' }).click();
    await page.getByRole('button', { name: 'Add c7g' }).click();
    await page.getByRole('checkbox', { name: 'arm64 (Graviton)' }).check();
    const estimate = page.getByRole('complementary', { name: 'Cost estimate' });
    const pools = estimate.locator('dt', { hasText: 'Spot pools' }).locator('xpath=following-sibling::dd');
    await pools.waitFor();
    if (!(Number((await pools.innerText()).replace(/[^\d]/g, '')) > 0)) throw new Error(`the estimate prices ${await pools.innerText()} pools`);
    await estimate.getByText(/^\$[\d.]+\/h$/).first().waitFor();
    // An x86-only family typed while only arm64 is allowed: warned before it is even added.
    await page.getByLabel('Instance families').fill('g4dn');
    await page.getByRole('status', { name: 'Conflicts' }).getByText('g4dn has no arm64 (Graviton) instance types').waitFor();
    await screenshot('templates-wizard-instances');
    await page.getByLabel('Instance families').fill('');
    await page.getByRole('status', { name: 'Conflicts' }).waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Next: Purchasing' }).click();
    await page.getByLabel('Capacity type').selectOption('spot');
    await page.getByRole('button', { name: 'Next: Node settings' }).click();
    await page.getByLabel('Size (GiB)').fill('80');
    await page.getByLabel('Node labels').fill('team=e2e');
    // Security groups are read from the linked account: tick a cluster's node group.
    const groups = page.getByRole('group', { name: 'Security groups' });
    const nodeLabel = groups.locator('label', { hasText: /-nodes · sg-[0-9a-f]+ · cluster / }).first();
    await nodeLabel.waitFor();
    const chosenGroup = /sg-[0-9a-f]+/.exec(await nodeLabel.innerText())?.[0];
    await nodeLabel.click();
    await groups.getByRole('checkbox', { name: new RegExp(chosenGroup ?? 'none') }).first().isChecked().then((on) => {
      if (!on) throw new Error(`${chosenGroup} is not ticked`);
    });
    await screenshot('templates-wizard-node');
    await page.getByRole('button', { name: 'Create template' }).click();
    await page.waitForURL(/\/templates$/);
    await page.getByRole('status').getByText(`Template ${templateName} created.`).waitFor();
    await templateRow().getByText('80 GiB gp3').waitFor();
    const created = (await apiAs(demo, 'GET', '/api/templates')).items.find((t) => t.name === templateName);
    if (!chosenGroup || JSON.stringify(created?.spec.security_groups) !== JSON.stringify([chosenGroup])) {
      throw new Error(`the template has security groups ${JSON.stringify(created?.spec.security_groups)}, ${chosenGroup} was ticked`);
    }
  }],
  ['a copy can take the default and give it back: exactly one default', async () => {
    // The organization's first template is already its default: move the badge to a copy and back.
    await templateRow().getByRole('button', { name: `Clone ${templateName}` }).click();
    await page.getByRole('status').getByText(`Copied ${templateName} as “${copyName}”.`).waitFor();
    await copyRow().getByRole('button', { name: `Set ${copyName} as default` }).click();
    await copyRow().locator('.badge').filter({ hasText: /^Default$/ }).waitFor();
    await templateRow().getByRole('button', { name: `Set ${templateName} as default` }).click();
    await page.getByRole('status').getByText(`${templateName} is now the default template.`).waitFor();
    await templateRow().locator('.badge').filter({ hasText: /^Default$/ }).waitFor();
    await copyRow().getByRole('button', { name: `Set ${copyName} as default` }).waitFor();
    const defaults = await page.getByRole('table', { name: 'Node templates' }).locator('tbody .badge').filter({ hasText: /^Default$/ }).count();
    if (defaults !== 1) throw new Error(`${defaults} templates are marked default`);
    const overflow = await page.getByRole('table', { name: 'Node templates' }).evaluate((element) => {
      const wrap = element.closest('.table-wrap');
      return wrap ? wrap.scrollWidth - wrap.clientWidth : 0;
    });
    if (overflow > 1) throw new Error(`the templates table overflows its card by ${overflow}px`);
    await screenshot('templates-list');
  }],
  ['a cluster policy links the template and keeps the link after a reload', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clusters' }).click();
    await page.waitForURL(/\/clusters$/);
    const table = page.getByRole('table', { name: 'Clusters' });
    await bodyRows(table).first().waitFor();
    templateCluster = await bodyRows(table).first().locator('.cell-title').first().innerText();
    await bodyRows(table).first().click();
    await page.waitForURL(/\/clusters\/[^/?]+$/);
    const form = page.getByRole('form', { name: 'Optimization policy' });
    const selector = form.getByLabel('Node template');
    await selector.locator('option', { hasText: `${templateName} (default)` }).waitFor({ state: 'attached' });
    await selector.selectOption({ label: `${templateName} (default)` });
    await form.getByRole('link', { name: templateName }).waitFor();
    if (await form.getByLabel('Allowed instance families').isEditable()) throw new Error('the linked template fields are still editable');
    if ((await form.getByLabel('Allowed instance families').inputValue()) !== 'm7g, c7g') throw new Error('the policy does not show the template families');
    await form.getByRole('button', { name: 'Save policy' }).click();
    await page.getByRole('status').getByText('Optimization policy saved.').waitFor();
    await page.reload();
    await form.getByRole('link', { name: templateName }).waitFor();
    const linked = await selector.evaluate((select) => select.selectedOptions[0]?.textContent ?? '');
    if (!linked.startsWith(templateName)) throw new Error(`after a reload the policy links "${linked}"`);
    await form.scrollIntoViewIfNeeded();
    await screenshot('templates-policy-linked');
  }],
  ['the policy history lists the saved version and what it changed', async () => {
    const card = page.locator('section.card').filter({ has: page.getByRole('form', { name: 'Optimization policy' }) });
    const line = await card.getByText(/^Version \d+ · saved by /).innerText();
    const current = Number(/^Version (\d+)/.exec(line)?.[1]);
    await card.getByRole('button', { name: 'History' }).click();
    const dialog = page.getByRole('dialog', { name: 'Policy history' });
    const versions = dialog.getByRole('list', { name: 'Policy versions' }).getByRole('listitem', { name: /^Version \d+$/ });
    await versions.first().waitFor();
    const newest = await versions.first().getAttribute('aria-label');
    if (newest !== `Version ${current}`) throw new Error(`the history starts at "${newest}", the card shows version ${current}`);
    await versions.first().getByText('Current').waitFor();
    // Linking the template was the newest save (the first one unless the demo saved this policy before).
    if (current > 1) await versions.first().getByText(new RegExp(`^template_id: .+ → ${templateName}$`)).waitFor();
    await screenshot('policy-history');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
  }],
  ['deleting a template a cluster uses is refused, naming the cluster', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Node templates' }).click();
    await page.waitForURL(/\/templates$/);
    await templateRow().getByText('1 cluster').waitFor();
    await templateRow().getByRole('button', { name: `Delete ${templateName}` }).click();
    const dialog = page.getByRole('dialog', { name: `Delete ${templateName}?` });
    await dialog.getByRole('button', { name: 'Delete template' }).click();
    const alert = dialog.getByRole('alert');
    await alert.waitFor();
    const message = await alert.innerText();
    if (!message.includes(templateCluster)) throw new Error(`the refusal does not name ${templateCluster}: ${message}`);
    await screenshot('templates-delete-refused');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    await templateRow().waitFor();
    // The unused copy goes.
    await copyRow().getByRole('button', { name: `Delete ${copyName}` }).click();
    await page.getByRole('dialog', { name: `Delete ${copyName}?` }).getByRole('button', { name: 'Delete template' }).click();
    await page.getByRole('status').getByText(`${copyName} was deleted.`).waitFor();
    await copyRow().waitFor({ state: 'detached' });
  }],
];

/** A card of the page, by its heading. */
const cardTitled = (title) => page.locator('section.card').filter({ has: page.getByRole('heading', { name: title, exact: true }) });
let wasteVolumes = [];

// Waste clean-up as a batch on the queue: select orphaned volumes, dry run, then apply with live
// per-item progress (each volume is snapshotted, the snapshot waited for, then deleted).
const wasteSteps = [
  ['a dry run of two orphaned volumes validates every call and changes nothing', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Waste' }).click();
    await page.waitForURL(/\/waste$/);
    const table = page.getByRole('table', { name: 'Orphaned volumes' });
    await bodyRows(table).nth(1).waitFor();
    wasteVolumes = [];
    for (const i of [0, 1]) wasteVolumes.push(await bodyRows(table).nth(i).locator('.mono').first().innerText());
    for (const volume of wasteVolumes) await page.getByRole('checkbox', { name: `Select ${volume}` }).check();
    await page.getByRole('button', { name: 'Clean up selected orphaned volumes' }).click();
    const dialog = page.getByRole('dialog', { name: 'Clean up 2 orphaned volumes?' });
    for (const volume of wasteVolumes) await dialog.getByRole('list', { name: 'Selected resources' }).getByText(volume).waitFor();
    await dialog.getByRole('checkbox', { name: /Dry run/ }).check();
    await screenshot('waste-dry-run-confirm');
    await dialog.getByRole('button', { name: 'Start dry run' }).click();
    await dialog.waitFor({ state: 'detached' });
    const panel = cardTitled('Orphaned volume clean-up (dry run)');
    await panel.getByRole('status').filter({ hasText: /^2 done · 0 skipped · 0 failed · 0 pending/ }).waitFor({ timeout: 30_000 });
    const items = panel.getByRole('table', { name: 'Batch items' });
    for (const volume of wasteVolumes) {
      await bodyRows(items).filter({ hasText: volume }).getByText(/Would: would snapshot/).waitFor();
    }
    await screenshot('waste-dry-run-done');
    await panel.getByRole('button', { name: 'Dismiss' }).click();
    for (const volume of wasteVolumes) await table.getByText(volume, { exact: true }).waitFor();
  }],
  ['applying the clean-up shows live progress, the safety snapshots and the saving', async () => {
    const table = page.getByRole('table', { name: 'Orphaned volumes' });
    for (const volume of wasteVolumes) await page.getByRole('checkbox', { name: `Select ${volume}` }).check();
    await page.getByRole('button', { name: 'Clean up selected orphaned volumes' }).click();
    const dialog = page.getByRole('dialog', { name: 'Clean up 2 orphaned volumes?' });
    await dialog.getByRole('button', { name: 'Clean up', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    const panel = cardTitled('Orphaned volume clean-up');
    // Live: an item is seen running (its snapshot completing) before the batch ends.
    const items = panel.getByRole('table', { name: 'Batch items' });
    // One look at the panel sees both an item running and the batch still cancellable (two
    // separate waits race the batch's end on a fast run).
    await panel
      .filter({ has: page.getByRole('table', { name: 'Batch items' }).getByText('Running', { exact: true }) })
      .filter({ has: page.getByRole('button', { name: 'Cancel batch' }) })
      .waitFor({ timeout: 30_000 });
    await screenshot('waste-apply-running');
    await panel.getByRole('status').filter({ hasText: /^2 done · 0 skipped · 0 failed · 0 pending · \$[\d,.]+\/month saved/ }).waitFor({ timeout: 60_000 });
    for (const volume of wasteVolumes) {
      await bodyRows(items).filter({ hasText: volume }).getByText(/^Snapshot snap-[0-9a-f]+ \(completed\)$/).waitFor();
    }
    await panel.getByRole('button', { name: 'Cancel batch' }).waitFor({ state: 'detached' });
    await screenshot('waste-apply-done');
    await panel.getByRole('button', { name: 'Dismiss' }).click();
    for (const volume of wasteVolumes) await table.getByText(volume, { exact: true }).waitFor({ state: 'detached' });
  }],
];

// Force on-demand from the cluster page: duration, countdown, revoke.
let forcedCluster = '';
const forceSteps = [
  ['forcing a cluster to on-demand shows the override with its countdown', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clusters' }).click();
    await page.waitForURL(/\/clusters$/);
    const table = page.getByRole('table', { name: 'Clusters' });
    await bodyRows(table).first().waitFor();
    await bodyRows(table).first().click();
    await page.waitForURL(/\/clusters\/[^/?]+$/);
    // The cluster page has rendered (its header carries the button) before its name is read.
    await page.getByRole('button', { name: 'Force on-demand' }).waitFor();
    forcedCluster = await page.getByRole('heading', { level: 1 }).innerText();
    await page.getByRole('button', { name: 'Force on-demand' }).click();
    const dialog = page.getByRole('dialog', { name: `Force ${forcedCluster} to on-demand` });
    await dialog.getByLabel('How long?').selectOption({ label: '1 hour' });
    await dialog.getByLabel('Reason (optional)').fill('e2e: force and revoke');
    await screenshot('force-confirm');
    await dialog.getByRole('button', { name: 'Apply' }).click();
    await dialog.waitFor({ state: 'detached' });
    const override = page.getByRole('list', { name: 'Manual overrides' }).getByRole('listitem').filter({ hasText: 'e2e: force and revoke' });
    await override.getByText('Forced on-demand').waitFor();
    await override.getByText(/ends in (59 min|1 h 0 min)/).waitFor();
    await page.getByRole('heading', { name: 'Manual overrides (1 in force)' }).waitFor();
    await screenshot('force-active');
  }],
  ['revoking the override hands the cluster back to its policy', async () => {
    const override = page.getByRole('list', { name: 'Manual overrides' }).getByRole('listitem').filter({ hasText: 'e2e: force and revoke' });
    await override.getByRole('button', { name: 'Revoke' }).click();
    await override.getByText('Ended').waitFor();
    await override.getByText(/revoked/).waitFor();
    await page.getByRole('heading', { name: 'Manual overrides (0 in force)' }).waitFor();
    await screenshot('force-revoked');
  }],
];

// The super-admin console beyond the AI model page: live operations, the live log, an
// organization created by invite (accepted in a fresh browser) and the admin's profile.
let ownerInviteUrl = '';
const inviteOrg = `E2E Invited ${stamp}`;
const consoleSteps = [
  ['live operations show the platform KPIs, the decision funnel and the stage lights', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('group', { name: 'Platform' }).getByRole('link', { name: 'Live operations' }).click();
    await page.waitForURL(/\/admin\/operations$/);
    const kpis = page.getByRole('region', { name: 'Platform KPIs' });
    await kpis.getByText('Nodes under management').waitFor();
    await page.getByRole('list', { name: 'Decision funnel' }).getByText('Pools scored').waitFor();
    const stages = page.getByRole('table', { name: 'Pipeline stages' });
    for (const stage of ['scoring', 'planning', 'execution']) await stages.getByText(stage, { exact: true }).waitFor();
    if ((await stages.getByRole('img', { name: /light$/ }).count()) !== 3) throw new Error('every stage has a traffic light');
    await screenshot('admin-live-operations');
  }],
  ['system health streams the server log live with a level filter', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('group', { name: 'Platform' }).getByRole('link', { name: 'System health' }).click();
    await page.waitForURL(/\/admin\/health$/);
    await page.getByText('Live', { exact: true }).waitFor();
    const lines = page.getByRole('list', { name: 'Log lines' });
    await lines.locator('li').first().waitFor();
    await page.getByLabel('Level').selectOption('warn');
    await page.getByText('Live', { exact: true }).waitFor();
    await page.getByLabel('Level').selectOption('info');
    await lines.locator('li').first().waitFor();
    await screenshot('admin-health-live-log');
  }],
  ['an organization created by invite is taken over by its owner through the link', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('group', { name: 'Platform' }).getByRole('link', { name: 'Clients' }).click();
    await page.getByRole('button', { name: 'New organization' }).click();
    const dialog = page.getByRole('dialog', { name: 'New organization' });
    await dialog.getByLabel('Organization name').fill(inviteOrg);
    await dialog.getByLabel('Owner e-mail').fill(`e2e+invited-${stamp}@example.com`);
    await dialog.getByLabel('Invite the owner by link instead').check();
    await dialog.getByRole('button', { name: 'Create organization' }).click();
    ownerInviteUrl = (await page.getByLabel('Invite link').innerText()).trim();
    if (!ownerInviteUrl.includes('/accept-owner-invite?token=')) throw new Error(`unexpected invite link ${ownerInviteUrl}`);
    await screenshot('admin-client-invited');
    await page.getByRole('button', { name: 'Done' }).click();
    const adminPage = page;
    page = await openPage();
    await page.goto(`${base}${new URL(ownerInviteUrl).pathname}${new URL(ownerInviteUrl).search}`);
    await page.getByRole('heading', { name: 'Your organization is ready' }).waitFor();
    await page.getByLabel('Password').fill(`e2e-invited-${stamp}-Aa1!`);
    await screenshot('owner-invite-accept');
    await page.getByRole('button', { name: 'Accept and sign in' }).click();
    await page.waitForURL(/\/(dashboard|onboarding)$/);
    await page.context().close();
    page = adminPage;
  }],
  ['the admin profile changes the name after re-authentication', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('group', { name: 'Platform' }).getByRole('link', { name: 'My profile' }).click();
    await page.waitForURL(/\/profile$/);
    const form = page.getByRole('form', { name: 'Name and e-mail' });
    await form.getByLabel('Name').fill(`Platform operator ${stamp}`);
    await form.getByLabel('Current password').fill('not the password 1');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByRole('alert').filter({ hasText: 'the current password is not correct' }).waitFor();
    await form.getByLabel('Current password').fill(admin.password);
    await form.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Profile saved.').waitFor();
    await screenshot('admin-profile');
  }],
  // Last (it switches every cluster of the platform, and its revert queues an optimization per
  // cluster): the emergency override from the live operations page, followed live, then reverted.
  ['the emergency override switches ALL nodes to on-demand live and is reverted', async () => {
    // Nodes are only switched through a cluster's agent: the organization signed up at the
    // start runs none yet (the demo's clusters run simulated ones), so install them (on the
    // simulator a new token starts a simulated agent within about 35 s).
    const waitAgents = async () => {
      for (let attempt = 0; attempt < 60; attempt += 1) {
        const { items } = await apiAs(owner, 'GET', '/api/clusters');
        const missing = items.filter((cluster) => cluster.agent_status !== 'connected');
        if (missing.length === 0) return;
        if (attempt === 0) for (const cluster of missing) await apiAs(owner, 'POST', `/api/clusters/${cluster.id}/agent`, {});
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
      throw new Error('the signed-up organization\'s clusters never connected their agents');
    };
    await waitAgents();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('group', { name: 'Platform' }).getByRole('link', { name: 'Live operations' }).click();
    await page.waitForURL(/\/admin\/operations$/);
    const controls = page.getByRole('region', { name: 'Global controls' });
    await controls.getByRole('button', { name: 'Manual override' }).click();
    const dialog = page.getByRole('dialog', { name: 'Switch ALL nodes to on-demand?' });
    if (!(await dialog.getByRole('button', { name: 'Switch all nodes' }).isDisabled())) throw new Error('the override can start without a reason');
    await dialog.getByLabel('Reason').fill(`e2e: maintenance drill ${stamp}`);
    await dialog.getByLabel('Duration').selectOption({ label: '1 hour' });
    await screenshot('admin-emergency-override-confirm');
    await dialog.getByRole('button', { name: 'Switch all nodes' }).click();
    await dialog.waitFor({ state: 'detached' });
    await controls.getByRole('progressbar', { name: 'Override progress' }).waitFor();
    await controls.getByText(`e2e: maintenance drill ${stamp}`, { exact: false }).waitFor();
    // Every cluster's force job replaces its spot nodes one by one (launch, Ready, drain).
    const done = controls.getByText('All nodes on on-demand. Safe for maintenance.');
    const unfinished = controls.getByRole('alert');
    await done.or(unfinished).first().waitFor({ timeout: 600_000 });
    if ((await unfinished.count()) > 0) throw new Error(`the override did not switch every node: ${await unfinished.first().innerText()}`);
    const counted = (await controls.getByText(/^\d+\/\d+ nodes? switched$/).innerText()).match(/^(\d+)\/(\d+)/);
    if (!counted || counted[1] !== counted[2] || Number(counted[2]) === 0) throw new Error(`unexpected progress "${counted?.[0]}"`);
    if ((await controls.getByRole('progressbar', { name: 'Override progress' }).getAttribute('value')) !== '100') throw new Error('the progress bar is not full');
    await controls.getByRole('table', { name: 'Clusters under the override' }).locator('tbody tr').first().waitFor();
    await screenshot('admin-emergency-override-done');
    await controls.getByRole('button', { name: 'Revert' }).click();
    await controls.getByRole('button', { name: 'Manual override' }).waitFor();
    await controls.getByLabel('Last emergency override').getByText(/revoked/).waitFor();
    await screenshot('admin-emergency-override-reverted');
  }],
];

if (demo.email && demo.password) {
  steps.push(...demoSteps);
  // The agent UI needs a server with the agent API (clusters carry `agent_status`).
  const probe = await apiAs(demo, 'GET', '/api/clusters').catch(() => null);
  if (probe?.items?.some((cluster) => typeof cluster.agent_status === 'string')) {
    steps.push(...agentSteps);
  } else {
    console.log('Note: this server reports no agent status on clusters; skipping the agent steps.');
  }
  steps.push(...templateSteps, ...policyHibernationSteps({ page: () => page, screenshot, apiAs, demo }),
    ...notificationsReportsSteps({ page: () => page, screenshot }),
    ...wasteSteps, ...forceSteps);
} else {
  console.log('Note: E2E_DEMO_EMAIL / E2E_DEMO_PASSWORD not set; skipping the demo inventory steps.');
}
// Last: graduating a model hot-swaps it into every actor, so it must not run before the demo's
// optimization; the final step rolls back to the shipped model.
if (admin.email && admin.password) {
  steps.push(...adminSteps, ...consoleSteps);
} else {
  console.log('Note: E2E_ADMIN_EMAIL / E2E_ADMIN_PASSWORD not set; skipping the AI model (platform admin) steps.');
}

let blocked = false;
for (const [name, run] of steps) {
  if (blocked) {
    console.log(`✗ ${name} (not run: an earlier step failed)`);
    results.push({ name, ok: false });
    continue;
  }
  try {
    await run();
    console.log(`✓ ${name}`);
    results.push({ name, ok: true });
  } catch (error) {
    blocked = true;
    console.log(`✗ ${name}\n    ${error.message.split('\n').join('\n    ')}`);
    results.push({ name, ok: false });
    await screenshot(`failed-${name.replace(/\W+/g, '-')}`).catch(() => undefined);
  }
}

if (problems.length > 0) {
  console.log('✗ no server or page errors');
  for (const problem of problems) console.log(`    ${problem}`);
  results.push({ name: 'no server or page errors', ok: false });
} else if (!blocked) {
  console.log('✓ no server or page errors');
  results.push({ name: 'no server or page errors', ok: true });
}
await browser.close();
finish();

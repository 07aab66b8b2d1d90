// End-to-end smoke test against a running server:
//   E2E_BASE_URL=http://127.0.0.1:8080 node e2e/run.mjs
// Signs up a new organization, checks the onboarding page and the audit log, signs out and
// back in. Screenshots go to e2e/artifacts/. Exits non-zero unless every step passes.
import { execSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
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

await mkdir(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: chromiumPath(),
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
page.setDefaultTimeout(STEP_TIMEOUT_MS);

const problems = [];
page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
page.on('response', (response) => {
  if (response.status() >= 500) problems.push(`${response.status()} from ${response.request().method()} ${response.url()}`);
});

const stamp = Date.now().toString(36);
const account = {
  org: `E2E Org ${stamp}`,
  email: `e2e+${stamp}@example.com`,
  password: `e2e-passphrase-${stamp}-Aa1!`,
};
let shot = 0;

async function screenshot(name) {
  shot += 1;
  await page.screenshot({ path: `${ARTIFACTS}${String(shot).padStart(2, '0')}-${name}.png`, fullPage: true });
}

const steps = [
  ['sign up a new organization', async () => {
    await page.goto(`${base}/signup`);
    await page.getByRole('heading', { name: 'Create your organization' }).waitFor();
    await page.getByLabel('Organization name').fill(account.org);
    await page.getByLabel('Work email').fill(account.email);
    await page.getByLabel('Password').fill(account.password);
    await screenshot('signup-form');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/(onboarding|dashboard)$/);
  }],
  ['lands on the onboarding / empty state', async () => {
    await page.getByText(/No cloud account connected yet/).first().waitFor();
    await page.locator('.topbar').getByText(account.org).waitFor();
    await screenshot('after-signup');
  }],
  ['audit log lists the signup', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit Logs' }).click();
    await page.waitForURL(/\/audit-logs$/);
    const table = page.getByRole('table', { name: 'Audit log entries' });
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
    await page.getByRole('button', { name: account.email }).click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login$/);
    const stored = await page.evaluate(() => localStorage.getItem('spot.refresh_token'));
    if (stored !== null) throw new Error('refresh token still stored after sign out');
    await page.goto(`${base}/dashboard`);
    await page.waitForURL(/\/login$/);
    await screenshot('signed-out');
  }],
  ['sign back in', async () => {
    await page.getByLabel('Email').fill(account.email);
    await page.getByLabel('Password').fill(account.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/(onboarding|dashboard)$/);
    await page.locator('.topbar').getByText(account.org).waitFor();
    await screenshot('signed-in-again');
  }],
];

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

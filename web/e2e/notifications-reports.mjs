// End-to-end steps (run by e2e/run.mjs as the demo user) for outbound notifications and the
// weekly reports:
// - notification settings: a webhook pointing at the cloud metadata address is refused on the
//   field (the server's address guard); a public webhook and a recipient are saved; a test
//   notification is queued and its delivery, with every attempt, appears in the history and
//   closes (the webhook host does not resolve here, so it fails after its retries — a clear
//   record, never stuck "pending");
// - weekly reports: "Make report now" makes a report of the last 7 days, opens it with its
//   figures and the e-mail rendering, and the list shows it with its delivery status.

/**
 * @param {object} ctx
 * @param {() => import('playwright-core').Page} ctx.page the current page
 * @param {(name: string, opts?: { viewport?: boolean }) => Promise<void>} ctx.screenshot
 */
export function notificationsReportsSteps({ page: current, screenshot }) {
  const nav = () => current().getByRole('navigation', { name: 'Main' });

  /** Waits until `locator`'s text matches `pattern` (polling; the list refreshes itself). */
  async function textMatches(locator, pattern, timeoutMs = 90_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = (await locator.textContent().catch(() => '')) ?? '';
      if (pattern.test(text)) return text;
      if (Date.now() > deadline) throw new Error(`"${text.trim().slice(0, 300)}" never matched ${pattern}`);
      await current().waitForTimeout(500);
    }
  }

  return [
    ['a webhook to the cloud metadata address is refused on its field', async () => {
      const page = current();
      await nav().getByRole('link', { name: 'Notifications' }).click();
      await page.waitForURL(/\/settings\/notifications$/);
      const form = page.getByRole('form', { name: 'Notification settings' });
      const webhook = form.getByLabel('Webhook URL');
      await webhook.fill('http://169.254.169.254/latest/meta-data/iam/security-credentials/');
      await form.getByRole('button', { name: 'Save settings' }).click();
      await form.getByText(/must point at a public address/).waitFor();
      await form.getByText(/cloud metadata service/).waitFor();
      if ((await webhook.getAttribute('aria-invalid')) !== 'true') throw new Error('the webhook field is not marked invalid');
      await screenshot('notifications-refused');
    }],
    ['notification settings save, and a test notification records every delivery attempt', async () => {
      const page = current();
      const form = page.getByRole('form', { name: 'Notification settings' });
      // A fresh secret per run: the form is then always changed, also on a reused server.
      await form.getByLabel('Webhook URL').fill(`https://hooks.e2e.invalid/services/T000/B000/secret${Date.now().toString(36)}`);
      await form.getByLabel('Recipients').fill('finops@example.com');
      await form.getByRole('button', { name: 'Save settings' }).click();
      await page.getByText('Notification settings saved.').waitFor();
      await form.getByText('Unsaved changes').waitFor({ state: 'detached' });
      const test = form.getByRole('button', { name: 'Send test notification' });
      if (!(await test.isEnabled())) throw new Error('test notification disabled after saving');
      await test.click();
      await page.getByText(/Test notification queued/).waitFor();
      const history = page.getByRole('table', { name: 'Notification deliveries' });
      const row = history.locator('tbody tr').filter({ hasText: 'Spot Optimizer test notification' }).first();
      await row.waitFor();
      // The delivery closes (retries with backoff), with its attempts listed.
      await textMatches(row.locator('td').last(), /^\s*(delivered|failed|partial|skipped)\s*$/);
      const attempts = row.getByRole('list', { name: /^Attempts for / });
      const items = await attempts.getByRole('listitem').allTextContents();
      if (!items.some((t) => t.startsWith('webhook #1'))) throw new Error(`no webhook attempt listed: ${items.join(' | ')}`);
      if (!items.some((t) => t.startsWith('email #1'))) throw new Error(`no e-mail attempt listed: ${items.join(' | ')}`);
      // The secret path of the webhook never shows in the record.
      if (items.some((t) => t.includes('secret'))) throw new Error('the webhook secret shows in the attempts');
      await screenshot('notifications-history');
    }],
    ['a weekly report is made on demand, opens with its figures and is listed with its delivery', async () => {
      const page = current();
      await nav().getByRole('link', { name: 'Weekly reports' }).click();
      await page.waitForURL(/\/reports$/);
      await page.getByRole('heading', { name: 'Weekly reports' }).waitFor();
      await page.getByRole('button', { name: 'Make report now' }).click();
      await page.waitForURL(/\/reports\/[^/?]+$/);
      await page.getByRole('heading', { name: /^Week of / }).waitFor();
      for (const label of ['Spend', 'On-demand equivalent', 'Saved', 'Monthly run rate']) {
        await page.getByText(label, { exact: true }).first().waitFor();
      }
      await page.getByTitle('Report e-mail').waitFor();
      // The e-mail as sent renders in its sandboxed frame (wait for it before the shot).
      await page.frameLocator('iframe[title="Report e-mail"]').getByText(/^Weekly report for /).waitFor();
      await screenshot('weekly-report');
      await page.getByTitle('Report e-mail').scrollIntoViewIfNeeded();
      await screenshot('weekly-report-email', { viewport: true });
      await page.getByRole('link', { name: 'All reports' }).first().click();
      await page.waitForURL(/\/reports$/);
      const table = page.getByRole('table', { name: 'Weekly reports' });
      const first = table.locator('tbody tr').first();
      await first.waitFor();
      await textMatches(first, /On demand/);
      // The report was queued for the configured webhook and recipients.
      await textMatches(first, /pending|sending|delivered|failed|partial|no recipients/i, 30_000);
    }],
  ];
}

// End-to-end steps (run by e2e/run.mjs as the demo user, after the template steps) for the
// optimization policy page and the hibernation command center:
// - policy: change a card → the planner's estimated-impact badge appears on that card and in
//   the sticky unsaved-changes bar → save (PATCH) → the bar says nothing is unsaved; a
//   workload-layer spot rule is badged too, then discarded;
// - hibernation: paint the weekend asleep by dragging on the 24×7 grid, import a country's
//   national holidays, save, "Hibernate now" (the cluster's groups go to zero), then resume
//   the schedule (awake again).

/**
 * @param {object} ctx
 * @param {() => import('playwright-core').Page} ctx.page the current page
 * @param {(name: string) => Promise<void>} ctx.screenshot
 * @param {(account: object, method: string, path: string, body?: unknown) => Promise<any>} ctx.apiAs
 * @param {object} ctx.demo the demo user
 */
export function policyHibernationSteps({ page: current, screenshot, apiAs, demo }) {
  const badgeOf = (scope, title) => scope.getByLabel(new RegExp(`^Estimated impact of ${title.replace(/[.*+?^${}()|[\]\\&]/g, '\\$&')}: `));

  /** Waits until a badge shows a computed amount (not "Estimating…"), returns its text. */
  async function computed(badge) {
    await badge.waitFor();
    const deadline = Date.now() + 60_000;
    for (;;) {
      const label = (await badge.getAttribute('aria-label')) ?? '';
      if (label.includes('Impact unavailable')) throw new Error(`the planner gave no estimate: ${await badge.getAttribute('title')}`);
      if (!label.endsWith('Estimating…')) return label.replace(/^.*: /, '');
      if (Date.now() > deadline) throw new Error('the impact estimate never arrived');
      await current().waitForTimeout(250);
    }
  }

  let sleepyCluster;

  return [
    ['a policy change shows its estimated impact on its card and in the sticky bar, then saves', async () => {
      const page = current();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clusters' }).click();
      await page.waitForURL(/\/clusters$/);
      const table = page.getByRole('table', { name: 'Clusters' });
      await table.locator('tbody tr').first().waitFor();
      await table.locator('tbody tr').first().click();
      await page.waitForURL(/\/clusters\/[^/?]+$/);
      const form = page.getByRole('form', { name: 'Optimization policy' });
      const tabs = form.getByRole('tablist', { name: 'Policy layers' });
      await tabs.getByRole('tab', { name: /Infrastructure layer/ }).waitFor();
      const bar = form.getByRole('region', { name: 'Policy changes' });
      await bar.getByText('No unsaved changes').waitFor();
      const aggressiveness = form.getByLabel('Aggressiveness');
      const before = await aggressiveness.inputValue();
      const after = before === 'aggressive' ? 'conservative' : 'aggressive';
      await aggressiveness.selectOption(after);
      const card = form.getByRole('region', { name: 'Bin packing & consolidation' });
      const amount = await computed(badgeOf(card, 'Bin packing & consolidation'));
      if (!/^([−+]\$[\d,.]+\/mo|No cost change)$/.test(amount)) throw new Error(`unexpected badge "${amount}"`);
      await bar.getByText('Unsaved changes in Bin packing & consolidation').waitFor();
      const total = await computed(badgeOf(bar, 'All changes'));
      if (total !== amount) throw new Error(`one change, but the bar says ${total} and the card ${amount}`);
      // While the policy is on screen the bar stays at the bottom of the viewport, however
      // far the form runs below it.
      await aggressiveness.scrollIntoViewIfNeeded();
      await page.evaluate(() => window.scrollBy(0, -200));
      const box = await bar.boundingBox();
      const viewport = page.viewportSize();
      if (!box || !viewport || box.y + box.height > viewport.height + 1) throw new Error(`the unsaved-changes bar is not on screen: ${JSON.stringify(box)}`);
      await page.screenshot({ path: new URL('./artifacts/policy-impact-viewport.png', import.meta.url).pathname });
      await screenshot('policy-impact-badge');
      await bar.getByRole('button', { name: 'Save policy' }).click();
      await page.getByRole('status').getByText('Optimization policy saved.').waitFor();
      await bar.getByText('No unsaved changes').waitFor();
      const saved = await apiAs(demo, 'GET', page.url().replace(/^.*\/clusters\//, '/api/clusters/').replace(/[?#].*$/, '') + '/policy');
      if (saved.aggressiveness !== after) throw new Error(`saved aggressiveness is ${saved.aggressiveness}`);
      // Workload layer: a spot rule is estimated too, then discarded.
      await tabs.getByRole('tab', { name: /Workload layer/ }).click();
      await form.getByRole('region', { name: 'Smart pod rightsizing' }).waitFor();
      await form.getByRole('button', { name: 'Add spot rule' }).click();
      const rule = form.getByRole('group', { name: 'Spot rule 1' });
      await rule.getByLabel('Namespace').fill('default');
      await rule.getByLabel('Spot preference').selectOption('never');
      await computed(badgeOf(form.getByRole('region', { name: 'Spot affinity & deployment rules' }), 'Spot affinity & deployment rules'));
      await screenshot('policy-workload-layer');
      await bar.getByRole('button', { name: 'Discard changes' }).click();
      await bar.getByText('No unsaved changes').waitFor();
      // Back as it was.
      await tabs.getByRole('tab', { name: /Infrastructure layer/ }).click();
      await aggressiveness.selectOption(before);
      await bar.getByRole('button', { name: 'Save policy' }).click();
      await bar.getByText('No unsaved changes').waitFor();
    }],
    ['hibernation: drag the weekend asleep, import national holidays, save', async () => {
      const page = current();
      // A discovered cluster (not one registered by hand in the agent steps, which has no
      // Auto Scaling groups), preferably one without a connected agent: its sleep and wake
      // do not wait on drains or Ready nodes.
      const clusters = (await apiAs(demo, 'GET', '/api/clusters')).items.filter((c) => !c.name.startsWith('e2e-'));
      const pick = clusters.find((c) => c.agent_status !== 'connected') ?? clusters[0];
      sleepyCluster = pick;
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Cluster hibernation' }).click();
      await page.waitForURL(/\/hibernation/);
      await page.getByLabel('Cluster', { exact: true }).selectOption(pick.id);
      await page.waitForURL(new RegExp(`cluster=${pick.id}`));
      const grid = page.getByRole('table', { name: 'Weekly schedule' });
      const cell = (label) => grid.getByRole('gridcell', { name: new RegExp(`^${label} `) });
      await cell('Sat 00:00').waitFor();
      // Paint Saturday and Sunday asleep (a drag from an awake cell paints asleep; from an
      // asleep one, awake: a second drag then paints asleep).
      const friday = await cell('Fri 23:00').getAttribute('data-kind');
      const drag = async () => {
        const a = await cell('Sat 00:00').boundingBox();
        const b = await cell('Sun 23:00').boundingBox();
        await page.mouse.move(a.x + 5, a.y + 5);
        await page.mouse.down();
        await page.mouse.move(b.x + 5, b.y + 5, { steps: 8 });
        await page.mouse.up();
      };
      if ((await cell('Sat 00:00').getAttribute('data-kind')) !== 'awake') await drag();
      await drag();
      for (const label of ['Sat 00:00', 'Sat 12:00', 'Sun 05:00', 'Sun 23:00']) {
        const kind = await cell(label).getAttribute('data-kind');
        if (kind !== 'asleep' && kind !== 'prewarm') throw new Error(`${label} is ${kind} after the drag`);
      }
      if ((await cell('Fri 23:00').getAttribute('data-kind')) !== friday) throw new Error('the drag painted Friday too');
      const next = String(new Date().getFullYear() + 1);
      await page.getByLabel('Country').selectOption('DE');
      await page.getByLabel('Year').selectOption(next);
      await page.getByRole('button', { name: 'Import national holidays' }).click();
      const holidays = page.getByRole('list', { name: 'Holidays' });
      await holidays.getByText(new RegExp(`^${next}-10-03 · German Unity Day`)).waitFor();
      await page.getByTestId('schedule-unsaved').waitFor();
      await screenshot('hibernation-grid-holidays');
      await page.getByRole('button', { name: 'Save schedule' }).click();
      await page.getByRole('status').getByText('Schedule saved').waitFor();
      await page.getByTestId('schedule-unsaved').waitFor({ state: 'detached' });
      const saved = await apiAs(demo, 'GET', `/api/clusters/${pick.id}/hibernation`);
      if (saved.slots.slice(120).some(Boolean)) throw new Error('the saved schedule keeps part of the weekend awake');
      if (!saved.holidays.includes(`${next}-12-25`)) throw new Error('the imported holidays were not saved');
    }],
    ['hibernation: sleep now scales the groups to zero, resume wakes the cluster', async () => {
      const page = current();
      await page.getByRole('button', { name: 'Hibernate now' }).click();
      // With a connected agent the nodes are cordoned and drained first (up to two minutes).
      await page.getByTestId('hibernation-state').getByText('Hibernating').waitFor({ timeout: 240_000 });
      const state = await apiAs(demo, 'GET', `/api/clusters/${sleepyCluster.id}/hibernation/state`);
      if (state.remembered.length === 0) throw new Error('no group sizes were remembered');
      await page.getByText(/^Manual override: hibernating/).waitFor();
      await screenshot('hibernation-asleep');
      await page.getByRole('button', { name: 'Resume schedule' }).click();
      // A wake waits (with an agent) for the new nodes to turn Ready.
      await page.getByTestId('hibernation-state').getByText('Active').waitFor({ timeout: 360_000 });
      const awake = await apiAs(demo, 'GET', `/api/clusters/${sleepyCluster.id}/hibernation/state`);
      if (awake.remembered.length !== 0) throw new Error('group sizes still remembered after the wake');
      const transitions = awake.transitions.map((t) => `${t.to_state}:${t.outcome}`);
      if (transitions[0] !== 'awake:success' || transitions[1] !== 'asleep:success') throw new Error(`transitions ${transitions.join(', ')}`);
    }],
  ];
}

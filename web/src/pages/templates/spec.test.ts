import { isGraviton, stepOfField, templateConflicts, toSpec, NEW_TEMPLATE } from './spec';

describe('node template spec helpers', () => {
  it('tells Graviton families from x86 ones', () => {
    for (const family of ['m6g', 'm7gd', 'c6gn', 't4g', 'x2gd', 'g5g', 'a1']) expect(isGraviton(family)).toBe(true);
    for (const family of ['m5', 'c5', 'g4dn', 'p3', 'm7i-flex', 'r6id', 'm6a']) expect(isGraviton(family)).toBe(false);
  });

  it('warns about arm64 with x86-only families and x86_64 with Graviton ones', () => {
    expect(templateConflicts({ families: ['g4dn', 'm7g'], architectures: ['arm64'], allow_burstable: false })).toEqual([
      'g4dn has no arm64 (Graviton) instance types. Choose Graviton families such as m7g or c7g, or also allow x86_64.',
    ]);
    expect(templateConflicts({ families: ['m6g', 'c7g', 'm5'], architectures: ['x86_64'], allow_burstable: false })[0]).toMatch(/^m6g and c7g are Graviton families/);
    expect(templateConflicts({ families: ['g4dn', 'm7g'], architectures: ['arm64', 'x86_64'], allow_burstable: false })).toEqual([]);
    expect(templateConflicts({ families: ['t3'], architectures: [], allow_burstable: false })[0]).toMatch(/^t3 is a burstable family/);
    expect(templateConflicts({ families: ['t3'], architectures: [], allow_burstable: true })).toEqual([]);
  });

  it('maps server fields to the wizard step that holds them', () => {
    expect(stepOfField('storage.iops')).toEqual({ step: 'node', path: 'storage.iops' });
    expect(stepOfField('taints[1].key')).toEqual({ step: 'node', path: 'taints' });
    expect(stepOfField('families')).toEqual({ step: 'instances', path: 'families' });
    expect(stepOfField('template_id')).toBeUndefined();
  });

  it('sends IOPS only for volume types that take it, and labels and taints as objects', () => {
    const spec = toSpec({
      ...NEW_TEMPLATE,
      families: ['m6i'],
      storage: { volume_type: 'gp2', size_gib: 80, iops: 3000 },
      labels: 'team=platform, tier=web',
      taints: [{ key: 'dedicated', value: '', effect: 'NoSchedule' }],
    });
    expect(spec.storage).toEqual({ volume_type: 'gp2', size_gib: 80 });
    expect(spec.labels).toEqual({ team: 'platform', tier: 'web' });
    expect(spec.taints).toEqual([{ key: 'dedicated', effect: 'NoSchedule' }]);
    expect(spec.excluded_sizes).toEqual(['nano', 'micro']);
  });
});

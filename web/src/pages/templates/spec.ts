import type { Template, TemplateSpec, TemplateSpecInput } from '../../api/types';
import { formatSelector, parseSelector, type AllocationStrategy, type Architecture, type CapacityType } from '../clusters/policy';

export const TEMPLATES_PATH = '/templates';
export const templatePath = (id: string) => `${TEMPLATES_PATH}/${encodeURIComponent(id)}`;

export type VolumeType = 'gp3' | 'gp2' | 'io1' | 'io2';
export type TaintEffect = 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';

export const VOLUME_TYPES: { value: VolumeType; label: string }[] = [
  { value: 'gp3', label: 'gp3' },
  { value: 'gp2', label: 'gp2' },
  { value: 'io1', label: 'io1' },
  { value: 'io2', label: 'io2' },
];
export const TAINT_EFFECTS: TaintEffect[] = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

/** EBS root volume bounds, as the server checks them. */
export const DISK_GIB = { min: 20, max: 16_384 } as const;
/** Provisioned IOPS per volume type; gp2 takes none, io1/io2 require it. */
export const IOPS_RANGE: Record<VolumeType, { min: number; max: number } | null> = {
  gp3: { min: 3_000, max: 16_000 },
  gp2: null,
  io1: { min: 100, max: 64_000 },
  io2: { min: 100, max: 256_000 },
};

/** Families offered as one-click suggestions: current general purpose, compute and memory lines on both architectures. */
export const FAMILY_SUGGESTIONS = ['m7i', 'm6i', 'm6a', 'm7g', 'm6g', 'c7i', 'c6i', 'c7g', 'c6g', 'r7i', 'r6i', 'r7g', 'r6g', 'm5', 'c5', 'r5', 't3', 'g4dn'];

/** The wizard's four steps, in order. */
export const STEPS = [
  { key: 'basics', label: 'Name' },
  { key: 'instances', label: 'Instances' },
  { key: 'purchasing', label: 'Purchasing' },
  { key: 'node', label: 'Node settings' },
] as const;
export type StepKey = (typeof STEPS)[number]['key'];

/** The wizard's form: lists are edited as comma-separated text, families as tags, taints as rows. */
export interface TemplateForm {
  name: string;
  description: string;
  families: string[];
  architectures: Architecture[];
  excluded_sizes: string;
  allow_burstable: boolean;
  capacity_type: CapacityType;
  strategy: AllocationStrategy;
  on_demand_fallback: boolean;
  storage: { volume_type: VolumeType; size_gib: number; iops: number | null };
  security_groups: string;
  labels: string;
  taints: TaintRow[];
}

export interface TaintRow {
  key: string;
  value: string;
  effect: TaintEffect;
}

export const EMPTY_TAINT: TaintRow = { key: '', value: '', effect: 'NoSchedule' };

/** What a new template starts with (the server's defaults, plus the usual tiny sizes excluded). */
export const NEW_TEMPLATE: TemplateForm = {
  name: '',
  description: '',
  families: [],
  architectures: [],
  excluded_sizes: 'nano, micro',
  allow_burstable: false,
  capacity_type: 'spot',
  strategy: 'capacity_optimized',
  on_demand_fallback: true,
  storage: { volume_type: 'gp3', size_gib: 50, iops: null },
  security_groups: '',
  labels: '',
  taints: [],
};

export const splitList = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((value) => value.trim())
    .filter(Boolean);

const isVolumeType = (value: string): value is VolumeType => value in IOPS_RANGE;
const isEffect = (value: string): value is TaintEffect => (TAINT_EFFECTS as string[]).includes(value);

export function toForm(template: Template): TemplateForm {
  const { spec } = template;
  return {
    name: template.name,
    description: template.description ?? '',
    families: [...spec.families],
    architectures: [...spec.architectures],
    excluded_sizes: spec.excluded_sizes.join(', '),
    allow_burstable: spec.allow_burstable,
    capacity_type: spec.capacity_type,
    strategy: spec.strategy,
    on_demand_fallback: spec.on_demand_fallback,
    storage: {
      volume_type: isVolumeType(spec.storage.volume_type) ? spec.storage.volume_type : 'gp3',
      size_gib: spec.storage.size_gib,
      iops: spec.storage.iops ?? null,
    },
    security_groups: spec.security_groups.join(', '),
    labels: formatSelector(spec.labels),
    taints: spec.taints.map((taint) => ({ key: taint.key, value: taint.value ?? '', effect: isEffect(taint.effect) ? taint.effect : 'NoSchedule' })),
  };
}

/** The spec the form describes; labels that do not parse are sent as none (the form refuses them first). */
export function toSpec(form: TemplateForm): TemplateSpecInput {
  const iops = form.storage.iops;
  return {
    families: form.families,
    architectures: Array.isArray(form.architectures) ? form.architectures : [],
    excluded_sizes: splitList(form.excluded_sizes),
    allow_burstable: form.allow_burstable,
    capacity_type: form.capacity_type,
    strategy: form.strategy,
    on_demand_fallback: form.on_demand_fallback,
    storage: {
      volume_type: form.storage.volume_type,
      size_gib: Number(form.storage.size_gib),
      ...(iops !== null && IOPS_RANGE[form.storage.volume_type] !== null ? { iops: Number(iops) } : {}),
    },
    security_groups: splitList(form.security_groups),
    labels: parseSelector(form.labels) ?? {},
    taints: form.taints
      .filter((taint) => taint.key.trim() !== '')
      .map((taint) => ({ key: taint.key.trim(), ...(taint.value.trim() !== '' ? { value: taint.value.trim() } : {}), effect: taint.effect })),
  };
}

/** The wizard step holding each field the server may name in a 422 (`storage.iops`, `taints[1].key`, …). */
export function stepOfField(field: string | undefined): { step: StepKey; path: string } | undefined {
  if (field === undefined) return undefined;
  const path = field.replace(/\[\d+\].*$/, '');
  if (path === 'name' || path === 'description') return { step: 'basics', path };
  if (['families', 'architectures', 'excluded_sizes', 'allow_burstable'].includes(path)) return { step: 'instances', path };
  if (['capacity_type', 'strategy', 'on_demand_fallback'].includes(path)) return { step: 'purchasing', path };
  if (['storage.volume_type', 'storage.size_gib', 'storage.iops', 'security_groups', 'labels', 'taints'].includes(path)) return { step: 'node', path };
  return undefined;
}

/**
 * Graviton (arm64-only) families carry a `g` right after the generation digit: m6g, m7gd,
 * c6gn, t4g, x2gd, im4gn; a1 is the first Graviton. Everything else AWS sells is x86_64.
 */
export function isGraviton(family: string): boolean {
  return family === 'a1' || /^[a-z]+\d+g[a-z]*$/.test(family);
}

/** t2, t3, t3a, t4g: instances that run on CPU credits. */
export const isBurstable = (family: string) => /^t\d/.test(family);

const list = (names: string[]) => (names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`);
const have = (names: string[]) => (names.length === 1 ? 'has' : 'have');

/**
 * Combinations the server refuses or that admit no instances, found before asking it: one
 * architecture with families that have none of its instance types, and burstable families
 * while burstable instances are not allowed.
 */
export function templateConflicts(draft: { families: string[]; architectures: Architecture[]; allow_burstable: boolean }): string[] {
  const families = [...new Set(draft.families.map((family) => family.trim().toLowerCase()).filter(Boolean))];
  const arches = new Set(draft.architectures);
  const warnings: string[] = [];
  if (arches.size === 1 && arches.has('arm64')) {
    const x86 = families.filter((family) => !isGraviton(family));
    if (x86.length > 0) {
      warnings.push(
        `${list(x86)} ${have(x86)} no arm64 (Graviton) instance types. Choose Graviton families such as m7g or c7g, or also allow x86_64.`,
      );
    }
  }
  if (arches.size === 1 && arches.has('x86_64')) {
    const arm = families.filter(isGraviton);
    if (arm.length > 0) {
      warnings.push(`${list(arm)} ${arm.length === 1 ? 'is a Graviton family' : 'are Graviton families'} with arm64 instance types only. Remove ${arm.length === 1 ? 'it' : 'them'}, or also allow arm64.`);
    }
  }
  if (!draft.allow_burstable) {
    const burstable = families.filter(isBurstable);
    if (burstable.length > 0) {
      warnings.push(`${list(burstable)} ${burstable.length === 1 ? 'is a burstable family' : 'are burstable families'}: ${burstable.length === 1 ? 'its' : 'their'} instances are left out unless you allow burstable instances.`);
    }
  }
  return warnings;
}

export const CAPACITY_LABEL: Record<CapacityType, string> = { spot: 'Spot', on_demand: 'On-Demand', hybrid: 'Hybrid' };
export const STRATEGY_LABEL: Record<AllocationStrategy, string> = { capacity_optimized: 'Capacity optimized', lowest_price: 'Lowest price' };

/** "50 GiB gp3", "200 GiB io2 · 8,000 IOPS". */
export function diskLabel(storage: TemplateSpec['storage']): string {
  const iops = storage.iops != null ? ` · ${storage.iops.toLocaleString('en-US')} IOPS` : '';
  return `${storage.size_gib.toLocaleString('en-US')} GiB ${storage.volume_type}${iops}`;
}

export function architecturesLabel(architectures: Architecture[]): string {
  return architectures.length === 0 ? 'From families' : architectures.join(', ');
}

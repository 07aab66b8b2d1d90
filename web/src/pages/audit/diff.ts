export type DiffKind = 'added' | 'removed' | 'changed' | 'unchanged';

export interface DiffRow {
  path: string;
  before: unknown;
  after: unknown;
  kind: DiffKind;
}

const ABSENT = Symbol('absent');
const ROOT = '(value)';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Leaf values keyed by dotted path; arrays and scalars are leaves, compared as JSON. */
function flatten(value: unknown, prefix: string, into: Map<string, unknown>): void {
  if (isPlainObject(value) && Object.keys(value).length > 0) {
    for (const [key, child] of Object.entries(value)) flatten(child, prefix ? `${prefix}.${key}` : key, into);
  } else {
    into.set(prefix || ROOT, value);
  }
}

/** Field-level comparison of an audit entry's before/after snapshots, in first-seen key order. */
export function diffSnapshots(before: unknown, after: unknown): DiffRow[] {
  const left = new Map<string, unknown>();
  const right = new Map<string, unknown>();
  if (before !== null && before !== undefined) flatten(before, '', left);
  if (after !== null && after !== undefined) flatten(after, '', right);
  const paths = [...new Set([...left.keys(), ...right.keys()])];
  return paths.map((path) => {
    const b = left.has(path) ? left.get(path) : ABSENT;
    const a = right.has(path) ? right.get(path) : ABSENT;
    const kind: DiffKind =
      b === ABSENT ? 'added' : a === ABSENT ? 'removed' : JSON.stringify(a) === JSON.stringify(b) ? 'unchanged' : 'changed';
    return { path, before: b === ABSENT ? undefined : b, after: a === ABSENT ? undefined : a, kind };
  });
}

export function formatValue(value: unknown): string {
  if (value === undefined) return '—';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const date = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function formatDateTime(iso: string): string {
  const value = new Date(iso);
  return Number.isNaN(value.getTime()) ? iso : dateTime.format(value);
}

export function formatDate(iso: string): string {
  const value = new Date(iso);
  return Number.isNaN(value.getTime()) ? iso : date.format(value);
}

const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
const usdCents = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const hourly = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 4, maximumFractionDigits: 4 });

/** Totals: whole dollars ("$12,345"); amounts under $100 keep their cents. */
export function formatUsd(amount: number): string {
  return Math.abs(amount) < 100 ? usdCents.format(amount) : usd.format(amount);
}

/** Line items in a table column, always with cents so the column reads evenly ("$140.16"). */
export function formatUsdCents(amount: number): string {
  return usdCents.format(amount);
}

/** An hourly price with four decimals ("$0.0416"). */
export function formatHourly(amount: number): string {
  return hourly.format(amount);
}

/** A 0–1 ratio as a whole percentage ("62%"). */
export function formatPercent(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}

/** Millicores as a number of vCPUs ("12.5"). */
export function formatCores(millicores: number): string {
  const vcpu = millicores / 1000;
  return vcpu.toLocaleString(undefined, { maximumFractionDigits: vcpu < 10 ? 1 : 0 });
}

/** MiB as GiB or TiB ("48 GiB"). */
export function formatMemory(mib: number): string {
  const gib = mib / 1024;
  if (gib >= 1024) return `${(gib / 1024).toLocaleString(undefined, { maximumFractionDigits: 1 })} TiB`;
  return `${gib.toLocaleString(undefined, { maximumFractionDigits: gib < 10 ? 1 : 0 })} GiB`;
}

import type { VerdictRow } from './api';

const METRICS: Record<string, { label: string; format: (v: number) => string }> = {
  cost_vs_on_demand: { label: 'Cost against on-demand', format: (v) => `${(v * 100).toFixed(1)} %` },
  avg_hourly_cost_per_instance: { label: 'Average cost per instance', format: (v) => `$${v.toFixed(4)}/h` },
  interruptions: { label: 'Interruptions', format: (v) => String(Math.round(v)) },
  capacity_changes: { label: 'Moves and replacements', format: (v) => String(Math.round(v)) },
};

/** The verdict of an A/B test: each metric for both models and which did better (lower). */
export function VerdictTable({ rows, modelA, modelB }: { rows: VerdictRow[]; modelA: string; modelB: string }) {
  if (rows.length === 0) return <p className="muted">No tick has run yet.</p>;
  const better = (b: string) => (b === 'a' ? `A (${modelA})` : b === 'b' ? `B (${modelB})` : 'Tie');
  return (
    <table className="table lab-verdict">
      <caption className="sr-only">Verdict</caption>
      <thead>
        <tr>
          <th scope="col">Metric</th>
          <th scope="col">Model A</th>
          <th scope="col">Model B</th>
          <th scope="col">Better</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => {
          const m = METRICS[r.metric] ?? { label: r.metric, format: (v: number) => v.toFixed(3) };
          return (
            <tr key={r.metric}>
              <th scope="row">{m.label}</th>
              <td className={r.better === 'a' ? 'lab-win' : undefined}>{m.format(r.a)}</td>
              <td className={r.better === 'b' ? 'lab-win' : undefined}>{m.format(r.b)}</td>
              <td>{better(r.better)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

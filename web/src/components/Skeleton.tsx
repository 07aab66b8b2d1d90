interface SkeletonProps {
  width?: number | string;
  height?: number | string;
}

export function Skeleton({ width = '100%', height = 14 }: SkeletonProps) {
  return <span className="skeleton" style={{ width, height }} aria-hidden="true" />;
}

/** Placeholder for a table or list while its data loads. */
export function SkeletonRows({ rows = 5, label = 'Loading' }: { rows?: number; label?: string }) {
  return (
    <div className="stack" style={{ padding: 20 }} role="status" aria-label={label}>
      {Array.from({ length: rows }, (_, index) => (
        <Skeleton key={index} height={18} width={`${92 - (index % 3) * 14}%`} />
      ))}
    </div>
  );
}

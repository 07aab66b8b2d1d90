export function Brand() {
  return (
    <span className="brand">
      <svg className="brand__mark" viewBox="0 0 32 32" aria-hidden="true">
        <rect width="32" height="32" rx="8" fill="#4f46e5" />
        <path d="M9 20c2 3 12 3 14-1s-12-4-12-8 10-4 12-1" fill="none" stroke="#fff" strokeWidth="3" strokeLinecap="round" />
      </svg>
      Spot Optimizer
    </span>
  );
}

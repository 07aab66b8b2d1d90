import type { ReactNode } from 'react';

interface CardProps {
  title?: ReactNode;
  actions?: ReactNode;
  /** Removes body padding so tables can run edge to edge. */
  flush?: boolean;
  className?: string;
  children: ReactNode;
}

export function Card({ title, actions, flush = false, className, children }: CardProps) {
  return (
    <section className={['card', className].filter(Boolean).join(' ')}>
      {(title !== undefined || actions !== undefined) && (
        <header className="card__header">
          {typeof title === 'string' ? <h2>{title}</h2> : title}
          {actions !== undefined && <div className="row">{actions}</div>}
        </header>
      )}
      <div className={flush ? 'card__body card__body--flush' : 'card__body'}>{children}</div>
    </section>
  );
}

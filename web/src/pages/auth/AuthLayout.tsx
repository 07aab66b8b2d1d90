import type { ReactNode } from 'react';
import { Brand } from '../../layout/Brand';

interface AuthLayoutProps {
  title: string;
  subtitle: string;
  footer?: ReactNode;
  children: ReactNode;
}

export function AuthLayout({ title, subtitle, footer, children }: AuthLayoutProps) {
  return (
    <main className="auth">
      <div className="auth-brand">
        <Brand />
      </div>
      <section className="card auth__card" aria-labelledby="auth-title">
        <header className="auth__header">
          <h1 id="auth-title">{title}</h1>
          <p className="muted">{subtitle}</p>
        </header>
        {children}
        {footer !== undefined && <p className="auth__footer">{footer}</p>}
      </section>
    </main>
  );
}

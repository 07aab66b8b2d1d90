import { useEffect, useId, useRef, useState } from 'react';
import { useNavigate } from 'react-router-dom';
import type { Me } from '../api/types';
import { useSignOut } from '../auth/hooks';
import { roleLabel } from '../auth/roles';

export function UserMenu({ me }: { me: Me }) {
  const [open, setOpen] = useState(false);
  const [signingOut, setSigningOut] = useState(false);
  const menuId = useId();
  const rootRef = useRef<HTMLDivElement>(null);
  const triggerRef = useRef<HTMLButtonElement>(null);
  const signOut = useSignOut();
  const navigate = useNavigate();

  useEffect(() => {
    if (!open) return;
    rootRef.current?.querySelector<HTMLElement>('[role="menuitem"]')?.focus();
    const onPointerDown = (event: PointerEvent) => {
      if (!rootRef.current?.contains(event.target as Node)) setOpen(false);
    };
    document.addEventListener('pointerdown', onPointerDown);
    return () => document.removeEventListener('pointerdown', onPointerDown);
  }, [open]);

  const close = () => {
    setOpen(false);
    triggerRef.current?.focus();
  };

  return (
    <div className="menu" ref={rootRef} onKeyDown={(event) => event.key === 'Escape' && close()}>
      <button
        ref={triggerRef}
        type="button"
        className="btn btn--ghost"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={menuId}
        onClick={() => setOpen((value) => !value)}
      >
        <span className="avatar" aria-hidden="true">
          {me.user.email.slice(0, 1).toUpperCase()}
        </span>
        {me.user.email}
      </button>
      {open && (
        <div className="menu__list" id={menuId} role="menu" aria-label="Account">
          <div className="menu__meta" role="presentation">
            <div>{me.user.email}</div>
            <div className="muted">
              {roleLabel(me.role)} · {me.organization.name}
            </div>
          </div>
          {!me.impersonated_by && (
            <button
              type="button"
              role="menuitem"
              className="menu__item"
              onClick={() => {
                setOpen(false);
                navigate('/profile');
              }}
            >
              Profile and password
            </button>
          )}
          <button
            type="button"
            role="menuitem"
            className="menu__item"
            disabled={signingOut}
            onClick={() => {
              setSigningOut(true);
              void signOut();
            }}
          >
            Sign out
          </button>
        </div>
      )}
    </div>
  );
}

import { useEffect, useState } from 'react';
import { Button } from './Button';

type CopyState = 'idle' | 'copied' | 'failed';

const FEEDBACK_MS = 2000;

/** Copies `value` to the clipboard and says so (the clipboard API needs a secure origin). */
export function CopyButton({ value, label = 'Copy' }: { value: string; label?: string }) {
  const [state, setState] = useState<CopyState>('idle');

  useEffect(() => {
    if (state === 'idle') return;
    const timer = window.setTimeout(() => setState('idle'), FEEDBACK_MS);
    return () => window.clearTimeout(timer);
  }, [state]);

  const copy = async () => {
    try {
      if (!navigator.clipboard) throw new Error('clipboard unavailable');
      await navigator.clipboard.writeText(value);
      setState('copied');
    } catch {
      setState('failed');
    }
  };

  return (
    <>
      <Button size="sm" onClick={() => void copy()}>
        {state === 'copied' ? 'Copied' : label}
      </Button>
      <span className="sr-only" role="status">
        {state === 'copied' ? 'Copied to clipboard' : ''}
      </span>
      {state === 'failed' && <span className="field__error">Copy failed; select the text and copy it manually.</span>}
    </>
  );
}

import { forwardRef, useId, useState, type KeyboardEvent } from 'react';
import { FAMILY_SUGGESTIONS, isGraviton, splitList } from './spec';

interface FamilyInputProps {
  label: string;
  value: string[];
  onChange: (families: string[]) => void;
  /** The text typed but not yet added, so warnings can follow the typing. */
  onDraftChange?: (draft: string) => void;
  onBlur?: () => void;
  hint?: string;
  error?: string;
  disabled?: boolean;
}

/**
 * Instance families as removable tags: type one and press Enter, comma or space (a pasted
 * list is split), or pick a suggestion.
 */
export const FamilyInput = forwardRef<HTMLInputElement, FamilyInputProps>(function FamilyInput(
  { label, value, onChange, onDraftChange, onBlur, hint, error, disabled = false },
  ref,
) {
  const id = useId();
  const [draft, setDraft] = useState('');
  const describedBy = [hint !== undefined && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;

  const updateDraft = (text: string) => {
    setDraft(text);
    onDraftChange?.(text);
  };
  const add = (text: string) => {
    const added = splitList(text.toLowerCase()).filter((family) => !value.includes(family));
    if (added.length > 0) onChange([...value, ...new Set(added)]);
    updateDraft('');
  };
  const remove = (family: string) => onChange(value.filter((f) => f !== family));

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === 'Enter' || event.key === ',' || event.key === ' ') {
      event.preventDefault();
      add(draft);
    } else if (event.key === 'Backspace' && draft === '' && value.length > 0) {
      remove(value[value.length - 1] as string);
    }
  };

  const suggestions = FAMILY_SUGGESTIONS.filter((family) => !value.includes(family) && family.startsWith(draft.trim().toLowerCase()));
  return (
    <div className="field">
      <label className="field__label" htmlFor={id}>
        {label}
      </label>
      <div className={disabled ? 'tags tags--disabled' : 'tags'} aria-invalid={Boolean(error)}>
        {value.length > 0 && (
          <ul className="tags__list" aria-label="Chosen families">
            {value.map((family) => (
              <li key={family} className="tag">
                <span className="mono">{family}</span>
                {isGraviton(family) && <span className="tag__note">arm64</span>}
                {!disabled && (
                  <button type="button" className="tag__remove" aria-label={`Remove ${family}`} onClick={() => remove(family)}>
                    ×
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
        <input
          ref={ref}
          id={id}
          className="tags__input"
          value={draft}
          disabled={disabled}
          placeholder={value.length === 0 ? 'Type a family, e.g. m6i, and press Enter' : 'Add another'}
          autoComplete="off"
          spellCheck={false}
          aria-invalid={Boolean(error)}
          aria-describedby={describedBy}
          onChange={(event) => {
            const text = event.target.value;
            // A pasted or typed separator adds what precedes it.
            if (/[\s,]$/.test(text)) add(text);
            else updateDraft(text);
          }}
          onKeyDown={onKeyDown}
          onBlur={() => {
            if (draft.trim() !== '') add(draft);
            onBlur?.();
          }}
        />
      </div>
      {hint !== undefined && (
        <span id={`${id}-hint`} className="field__hint">
          {hint}
        </span>
      )}
      {error && (
        <span id={`${id}-error`} className="field__error">
          {error}
        </span>
      )}
      {!disabled && suggestions.length > 0 && (
        <div className="suggestions" role="group" aria-label="Suggested families">
          <span className="field__hint">Common:</span>
          {suggestions.map((family) => (
            <button
              key={family}
              type="button"
              className="suggestion"
              // Keeps focus (and the half-typed text) in the input: the suggestion replaces it.
              onMouseDown={(event) => event.preventDefault()}
              onClick={() => add(family)}
              aria-label={`Add ${family}`}
            >
              + {family}
            </button>
          ))}
        </div>
      )}
    </div>
  );
});

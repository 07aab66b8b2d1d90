import type { FieldValues, Path, UseFormSetError } from 'react-hook-form';
import { ApiError, errorMessage } from './errors';

/**
 * Shows an API error on the form: under the named input when the server reports a `field`
 * this form has, otherwise as a form-level message (`errors.root.server`).
 */
export function applyApiError<T extends FieldValues>(
  error: unknown,
  fields: readonly Path<T>[],
  setError: UseFormSetError<T>,
): void {
  const field = error instanceof ApiError ? fields.find((name) => name === error.field) : undefined;
  if (field !== undefined) {
    setError(field, { type: 'server', message: errorMessage(error) }, { shouldFocus: true });
  } else {
    setError('root.server', { type: 'server', message: errorMessage(error) });
  }
}

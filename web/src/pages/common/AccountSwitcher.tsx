import { useSearchParams } from 'react-router-dom';
import type { Account } from '../../api/types';
import { SelectField } from '../../components';

/** Query-string key of the selected account (the Clusters page filters on the same key). */
export const ACCOUNT_PARAM = 'account';

/**
 * The account selected in the URL (`?account=<id>`), or undefined for "All accounts". An id
 * that is not among `accounts` (disconnected since the link was shared) counts as all.
 */
export function useAccountScope(accounts: Account[]): [string | undefined, (id: string | undefined) => void] {
  const [params, setParams] = useSearchParams();
  const raw = params.get(ACCOUNT_PARAM);
  const selected = raw !== null && accounts.some((account) => account.id === raw) ? raw : undefined;
  const select = (id: string | undefined) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (id === undefined || id === '') next.delete(ACCOUNT_PARAM);
        else next.set(ACCOUNT_PARAM, id);
        return next;
      },
      { replace: true },
    );
  return [selected, select];
}

/** "All accounts" or one linked account; scopes every number of the page that shows it. */
export function AccountSwitcher({ accounts, value, onChange }: { accounts: Account[]; value: string | undefined; onChange: (id: string | undefined) => void }) {
  return (
    <div className="account-switcher">
      <SelectField label="Account" value={value ?? ''} onChange={(event) => onChange(event.target.value || undefined)}>
        <option value="">All accounts</option>
        {accounts.map((account) => (
          <option key={account.id} value={account.id}>
            {account.name}
            {account.aws_account_id_masked ? ` (${account.aws_account_id_masked})` : ''}
          </option>
        ))}
      </SelectField>
    </div>
  );
}

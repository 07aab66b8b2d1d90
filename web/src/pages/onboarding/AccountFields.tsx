import type { FieldErrors, UseFormRegister } from 'react-hook-form';
import { SelectField, TextField } from '../../components';
import { AWS_REGIONS, accountRules } from '../accounts/format';

interface NameAndRegion {
  name: string;
  region: string;
}

/** Display name and home region, shared by both connection methods. */
export function NameAndRegionFields<T extends NameAndRegion>({
  register,
  errors,
}: {
  register: UseFormRegister<T>;
  errors: FieldErrors<NameAndRegion>;
}) {
  // Both forms extend NameAndRegion, so registering these two keys is sound for any T.
  const registerOwn = register as unknown as UseFormRegister<NameAndRegion>;
  return (
    <div className="form-grid">
      <TextField label="Account name" hint="Shown on dashboards, e.g. Production." error={errors.name?.message} {...registerOwn('name', accountRules.name)} />
      <SelectField label="Region" hint="Where discovery starts." error={errors.region?.message} {...registerOwn('region')}>
        {AWS_REGIONS.map((region) => (
          <option key={region} value={region}>
            {region}
          </option>
        ))}
      </SelectField>
    </div>
  );
}

export function FormAlert({ message }: { message: string | undefined }) {
  if (message === undefined) return null;
  return (
    <div className="form-alert" role="alert">
      {message}
    </div>
  );
}

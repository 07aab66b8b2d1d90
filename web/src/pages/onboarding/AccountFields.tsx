import type { FieldError, UseFormRegisterReturn } from 'react-hook-form';
import { SelectField, TextField } from '../../components';
import { AWS_REGIONS } from '../accounts/format';

interface NameAndRegionProps {
  name: UseFormRegisterReturn<'name'>;
  region: UseFormRegisterReturn<'region'>;
  errors: { name?: FieldError; region?: FieldError };
}

/** Display name and home region, shared by both connection methods. */
export function NameAndRegionFields({ name, region, errors }: NameAndRegionProps) {
  return (
    <div className="form-grid">
      <TextField label="Account name" hint="Shown across the app, e.g. Production." error={errors.name?.message} {...name} />
      <SelectField label="Region" hint="The region discovery scans." error={errors.region?.message} {...region}>
        {AWS_REGIONS.map((code) => (
          <option key={code} value={code}>
            {code}
          </option>
        ))}
      </SelectField>
    </div>
  );
}

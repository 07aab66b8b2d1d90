import { useForm } from 'react-hook-form';
import { applyApiError } from '../../../api/forms';
import type { Account } from '../../../api/types';
import { Button, Modal, TextField, useToast } from '../../../components';
import { useRenameAccount } from '../../accounts/api';
import { accountRules } from '../../accounts/format';

/** Mounted only while open, so the form starts from the account's current name. */
export function RenameAccountModal({ account, onClose }: { account: Account; onClose: () => void }) {
  const rename = useRenameAccount();
  const toast = useToast();
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors, isSubmitting },
  } = useForm<{ name: string }>({ defaultValues: { name: account.name } });

  const onSubmit = handleSubmit(async ({ name }) => {
    try {
      const renamed = await rename.mutateAsync({ id: account.id, name: name.trim() });
      toast.success(`Renamed to ${renamed.name}.`);
      onClose();
    } catch (error) {
      applyApiError(error, ['name'], setError);
    }
  });

  return (
    <Modal
      open
      onClose={onClose}
      title="Rename account"
      description={`AWS account ${account.aws_account_id_masked ?? ''}`}
      footer={
        <>
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button variant="primary" type="submit" form="rename-account-form" loading={isSubmitting}>
            Save
          </Button>
        </>
      }
    >
      <form id="rename-account-form" className="stack" onSubmit={onSubmit} noValidate>
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField label="Account name" error={errors.name?.message} {...register('name', accountRules.name)} />
      </form>
    </Modal>
  );
}

import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { applyApiError } from '../../../api/forms';
import type { InviteCreated, InviteRole } from '../../../api/types';
import { Button, CopyButton, Modal, SelectField, TextField } from '../../../components';
import { emailRules } from '../../auth/validation';
import { useCreateInvite } from './api';

interface InviteForm {
  email: string;
  role: InviteRole;
}

/** Invites a teammate, then shows the one-time accept link so it can be shared directly. */
export function InviteModal({ open, onClose }: { open: boolean; onClose: () => void }) {
  const [created, setCreated] = useState<InviteCreated | null>(null);
  const createInvite = useCreateInvite();
  const {
    register,
    handleSubmit,
    setError,
    reset,
    formState: { errors, isSubmitting },
  } = useForm<InviteForm>({ defaultValues: { email: '', role: 'viewer' } });

  const close = () => {
    setCreated(null);
    reset();
    onClose();
  };

  const onSubmit = handleSubmit(async (values) => {
    try {
      setCreated(await createInvite.mutateAsync(values));
    } catch (error) {
      applyApiError(error, ['email', 'role'], setError);
    }
  });

  if (created !== null) {
    return (
      <Modal
        open={open}
        onClose={close}
        title="Invitation created"
        description={`Send this link to ${created.email}. It expires on ${new Date(created.expires_at).toLocaleString()}.`}
        footer={
          <Button variant="primary" onClick={close}>
            Done
          </Button>
        }
      >
        <div className="stack">
          <TextField label="Invite link" readOnly value={created.accept_url} onFocus={(event) => event.currentTarget.select()} />
          <div className="row">
            <CopyButton value={created.accept_url} label="Copy link" />
          </div>
        </div>
      </Modal>
    );
  }

  return (
    <Modal
      open={open}
      onClose={close}
      title="Invite a teammate"
      description="They will join your organization with the role you choose."
      footer={
        <>
          <Button variant="ghost" onClick={close}>
            Cancel
          </Button>
          <Button variant="primary" type="submit" form="invite-form" loading={isSubmitting}>
            Send invite
          </Button>
        </>
      }
    >
      <form id="invite-form" className="stack" onSubmit={onSubmit} noValidate>
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField label="Email" type="email" error={errors.email?.message} {...register('email', emailRules)} />
        <SelectField
          label="Role"
          hint="Admins can manage members and settings; viewers have read-only access."
          error={errors.role?.message}
          {...register('role')}
        >
          <option value="viewer">Viewer</option>
          <option value="admin">Admin</option>
        </SelectField>
      </form>
    </Modal>
  );
}

import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router-dom';
import { errorMessage } from '../../../api/errors';
import { applyApiError } from '../../../api/forms';
import type { Client, ClientCreated } from '../../../api/types';
import { isSuperAdmin, useMe } from '../../../auth/MeContext';
import { startImpersonation } from '../../../auth/impersonation';
import { Badge, Button, Card, CheckboxField, CopyButton, EmptyState, ErrorState, Modal, SkeletonRows, Table, TextField, useToast, type Column } from '../../../components';
import { TeamIcon } from '../../../components/icons';
import { PageHeader } from '../../../layout/PageHeader';
import { formatDateTime, formatUsd } from '../../../lib/format';
import { agentHealth, clientStatus, useClientAction, useClients, useCreateClient, useImpersonate, type ClientAction } from './api';
import { useInviteClient, type ClientInvited } from '../console/api';

export const CLIENTS_PATH = '/admin/clients';

/** The platform's client registry (super-admins only). */
export function ClientsPage() {
  const me = useMe();
  if (!isSuperAdmin(me) || me.impersonated_by) {
    return (
      <>
        <PageHeader title="Clients" />
        <Card>
          <EmptyState
            icon={<TeamIcon size={22} />}
            title="You are not allowed to view this page"
            description="Only platform super-admins can manage client organizations."
          />
        </Card>
      </>
    );
  }
  return <ClientsAdmin />;
}

const CONFIRM: Record<ClientAction, { title: string; verb: string; describe: (c: Client) => string; danger: boolean }> = {
  block: {
    title: 'Block this organization?',
    verb: 'Block',
    describe: (c) => `Every session of ${c.name}'s ${c.members} member(s) is revoked at once and sign-ins are refused until you unblock it.`,
    danger: true,
  },
  unblock: {
    title: 'Unblock this organization?',
    verb: 'Unblock',
    describe: (c) => `Members of ${c.name} can sign in again.`,
    danger: false,
  },
  delete: {
    title: 'Delete this organization?',
    verb: 'Delete',
    describe: (c) => `${c.name} is hidden, its sessions are revoked and sign-ins refused. Its data is kept and it can be restored until it is purged.`,
    danger: true,
  },
  restore: {
    title: 'Restore this organization?',
    verb: 'Restore',
    describe: (c) => `${c.name} reappears in the registry${c.blocked_at ? ' (still blocked)' : ''} and its members can sign in again.`,
    danger: false,
  },
};

function ClientsAdmin() {
  const [showDeleted, setShowDeleted] = useState(false);
  const clients = useClients(showDeleted);
  const action = useClientAction();
  const impersonate = useImpersonate();
  const toast = useToast();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<ClientCreated | ClientInvited | null>(null);
  const [pending, setPending] = useState<{ action: ClientAction; client: Client } | null>(null);
  const [reason, setReason] = useState('');

  const confirm = () => {
    if (pending === null) return;
    action.mutate(
      { action: pending.action, id: pending.client.id, reason: pending.action === 'block' ? reason.trim() : undefined },
      {
        onSuccess: (client) => {
          toast.success(`${client.name}: ${clientStatus(client.status).label.toLowerCase()}.`);
          setPending(null);
          setReason('');
        },
        onError: (error) => {
          toast.error(errorMessage(error));
          setPending(null);
        },
      },
    );
  };

  const startImpersonating = (client: Client) =>
    impersonate.mutate(client.id, {
      onSuccess: (tokens) => {
        startImpersonation(tokens);
        // The shell stays mounted: reset (not just clear) so `me` is fetched as the client.
        void queryClient.resetQueries();
        navigate('/dashboard', { replace: true });
      },
      onError: (error) => toast.error(errorMessage(error)),
    });

  const columns: Column<Client>[] = [
    {
      key: 'name',
      header: 'Organization',
      render: (c) => (
        <span className="stack stack--tight">
          <span className="row row--wrap">
            <span className="model-name">{c.name}</span>
            {c.platform && <Badge tone="info">Platform</Badge>}
          </span>
          <span className="muted">{c.owner_email ?? 'no owner'}</span>
        </span>
      ),
    },
    {
      key: 'status',
      header: 'Status',
      width: '100px',
      render: (c) => {
        const s = clientStatus(c.status);
        return (
          <span title={c.blocked_reason ?? undefined}>
            <Badge tone={s.tone}>{s.label}</Badge>
          </span>
        );
      },
    },
    {
      key: 'footprint',
      header: 'Footprint',
      width: '170px',
      render: (c) => (
        <span className="stack stack--tight">
          <span>
            {c.clusters} {c.clusters === 1 ? 'cluster' : 'clusters'} · {c.nodes} {c.nodes === 1 ? 'node' : 'nodes'}
          </span>
          <span className="muted">
            {c.accounts} {c.accounts === 1 ? 'account' : 'accounts'} · {c.members} {c.members === 1 ? 'member' : 'members'}
          </span>
        </span>
      ),
    },
    { key: 'spend', header: 'Spend / mo', width: '110px', align: 'right', render: (c) => <span className="nowrap">{formatUsd(c.monthly_spend)}</span> },
    { key: 'savings', header: 'Savings / mo', width: '110px', align: 'right', render: (c) => <span className="nowrap">{formatUsd(c.monthly_savings)}</span> },
    {
      key: 'agents',
      header: 'Agents',
      width: '80px',
      render: (c) => {
        const h = agentHealth(c);
        return (
          <span title="Connected agents / clusters">
            <Badge tone={h.tone}>{h.label}</Badge>
          </span>
        );
      },
    },
    {
      key: 'activity',
      header: 'Last activity',
      width: '130px',
      render: (c) => <span className="muted">{c.last_activity_at ? formatDateTime(c.last_activity_at) : 'never'}</span>,
    },
    {
      key: 'actions',
      header: <span className="sr-only">Actions</span>,
      width: '260px',
      render: (c) => <ClientActions client={c} busy={impersonate.isPending} onAction={(a) => setPending({ action: a, client: c })} onImpersonate={() => startImpersonating(c)} />,
    },
  ];

  const confirmation = pending ? CONFIRM[pending.action] : null;
  return (
    <>
      <PageHeader
        title="Clients"
        subtitle="Every customer organization, its figures and its access."
        actions={
          <Button variant="primary" onClick={() => setCreating(true)}>
            New organization
          </Button>
        }
      />
      <Card>
        <div className="row row--between clients-toolbar">
          <CheckboxField label="Show deleted organizations" checked={showDeleted} onChange={(e) => setShowDeleted(e.target.checked)} />
        </div>
        {clients.isPending && <SkeletonRows label="Loading clients" />}
        {clients.isError && <ErrorState error={clients.error} onRetry={() => void clients.refetch()} />}
        {clients.isSuccess &&
          (clients.data.items.length === 0 ? (
            <EmptyState icon={<TeamIcon size={22} />} title="No organizations" description="Create the first one with “New organization”." />
          ) : (
            <Table caption="Client registry" columns={columns} rows={clients.data.items} rowKey={(c) => c.id} />
          ))}
      </Card>
      <CreateClientDialog
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(result) => {
          setCreating(false);
          setCreated(result);
        }}
      />
      <Modal
        open={created !== null}
        onClose={() => setCreated(null)}
        title="Organization created"
        description={
          created !== null && 'invite_url' in created
            ? 'Send the owner this invite link: they choose their password with it. It is shown only once (and printed to the server log).'
            : 'Give the owner this password. It is shown only once.'
        }
        footer={
          <Button variant="primary" onClick={() => setCreated(null)}>
            Done
          </Button>
        }
      >
        {created && (
          <dl className="created-credentials">
            <dt>Organization</dt>
            <dd>{created.client.name}</dd>
            <dt>Owner</dt>
            <dd>{created.owner_email}</dd>
            {'invite_url' in created ? (
              <>
                <dt>Invite link</dt>
                <dd className="row">
                  <code className="mono invite-link" aria-label="Invite link">
                    {created.invite_url}
                  </code>
                  <CopyButton value={created.invite_url} label="Copy link" />
                </dd>
                <dt>Valid until</dt>
                <dd>{formatDateTime(created.expires_at)}</dd>
              </>
            ) : (
              <>
                <dt>Password</dt>
                <dd className="row">
                  <code className="mono" aria-label="Generated password">
                    {created.password}
                  </code>
                  <CopyButton value={created.password} label="Copy password" />
                </dd>
              </>
            )}
          </dl>
        )}
      </Modal>
      <Modal
        open={pending !== null}
        onClose={() => setPending(null)}
        title={confirmation?.title ?? ''}
        description={pending && confirmation ? confirmation.describe(pending.client) : undefined}
        footer={
          <>
            <Button variant="ghost" onClick={() => setPending(null)}>
              Cancel
            </Button>
            <Button variant={confirmation?.danger ? 'danger' : 'primary'} loading={action.isPending} onClick={confirm}>
              {confirmation ? `${confirmation.verb} ${pending?.client.name ?? ''}` : ''}
            </Button>
          </>
        }
      >
        {pending?.action === 'block' && (
          <TextField label="Reason (optional)" maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} />
        )}
      </Modal>
    </>
  );
}

function ClientActions({
  client,
  busy,
  onAction,
  onImpersonate,
}: {
  client: Client;
  busy: boolean;
  onAction: (action: ClientAction) => void;
  onImpersonate: () => void;
}) {
  if (client.platform) return <span className="muted">Platform organization</span>;
  if (client.status === 'deleted') {
    return (
      <span className="row row--wrap">
        <Button size="sm" onClick={() => onAction('restore')} aria-label={`Restore ${client.name}`}>
          Restore
        </Button>
        {client.purge_after && <span className="muted">purge after {formatDateTime(client.purge_after)}</span>}
      </span>
    );
  }
  return (
    <span className="row row--wrap">
      {client.status === 'active' && (
        <Button size="sm" variant="primary" loading={busy} onClick={onImpersonate} aria-label={`Impersonate ${client.name}`}>
          Impersonate
        </Button>
      )}
      {client.status === 'blocked' ? (
        <Button size="sm" onClick={() => onAction('unblock')} aria-label={`Unblock ${client.name}`}>
          Unblock
        </Button>
      ) : (
        <Button size="sm" onClick={() => onAction('block')} aria-label={`Block ${client.name}`}>
          Block
        </Button>
      )}
      <Button size="sm" variant="ghost" className="btn--danger-text" onClick={() => onAction('delete')} aria-label={`Delete ${client.name}`}>
        Delete
      </Button>
    </span>
  );
}

interface CreateForm {
  name: string;
  owner_email: string;
  /** Invite the owner by link instead of generating a password. */
  invite: boolean;
}

function CreateClientDialog({
  open,
  onClose,
  onCreated,
}: {
  open: boolean;
  onClose: () => void;
  onCreated: (c: ClientCreated | ClientInvited) => void;
}) {
  const create = useCreateClient();
  const invite = useInviteClient();
  const form = useForm<CreateForm>({ defaultValues: { name: '', owner_email: '', invite: false } });
  const { errors } = form.formState;
  const byInvite = form.watch('invite');
  const submit = form.handleSubmit(({ invite: viaInvite, ...values }) => {
    const callbacks = {
      onSuccess: (result: ClientCreated | ClientInvited) => {
        form.reset();
        onCreated(result);
      },
      onError: (error: unknown) => applyApiError(error, ['name', 'owner_email'], form.setError),
    };
    if (viaInvite) invite.mutate(values, callbacks);
    else create.mutate(values, callbacks);
  });
  return (
    <Modal
      open={open}
      onClose={onClose}
      title="New organization"
      description={
        byInvite
          ? 'Creates the organization and an invite link with which its owner chooses a password.'
          : 'Creates the organization and its owner with a generated password.'
      }
      footer={
        <>
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button variant="primary" type="submit" form="create-client" loading={create.isPending || invite.isPending}>
            Create organization
          </Button>
        </>
      }
    >
      <form id="create-client" className="stack" onSubmit={(e) => void submit(e)} noValidate>
        <TextField label="Organization name" error={errors.name?.message} {...form.register('name', { required: 'Enter a name' })} />
        <TextField label="Owner e-mail" type="email" error={errors.owner_email?.message} {...form.register('owner_email', { required: 'Enter the owner’s e-mail' })} />
        <CheckboxField
          label="Invite the owner by link instead"
          hint="No password is generated: the owner opens the link (valid for 7 days) and chooses one."
          {...form.register('invite')}
        />
        {errors.root?.server?.message && (
          <p className="field__error" role="alert">
            {errors.root.server.message}
          </p>
        )}
      </form>
    </Modal>
  );
}

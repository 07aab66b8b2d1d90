import { useState } from 'react';
import { errorMessage } from '../../../api/errors';
import type { Invite, Member, Role } from '../../../api/types';
import { canManageOrg, useMe } from '../../../auth/MeContext';
import { roleLabel } from '../../../auth/roles';
import { Badge, Button, Card, EmptyState, ErrorState, Modal, SkeletonRows, Table, useToast, type Column } from '../../../components';
import { MailIcon } from '../../../components/icons';
import { PageHeader } from '../../../layout/PageHeader';
import { formatDate } from '../../../lib/format';
import { InviteModal } from './InviteModal';
import { useInvites, useMembers, useRemoveMember, useRevokeInvite, useUpdateMemberRole } from './api';

export function TeamPage() {
  const me = useMe();
  const canManage = canManageOrg(me);
  const members = useMembers();
  const invites = useInvites(canManage);
  const updateRole = useUpdateMemberRole();
  const removeMember = useRemoveMember();
  const revokeInvite = useRevokeInvite();
  const toast = useToast();
  const [inviteOpen, setInviteOpen] = useState(false);
  const [removing, setRemoving] = useState<Member | null>(null);

  // Admins manage admins and viewers; only owners may grant or change ownership.
  const assignableRoles: Role[] = me.role === 'owner' ? ['owner', 'admin', 'viewer'] : ['admin', 'viewer'];
  const canEdit = (member: Member) =>
    canManage && member.user_id !== me.user.id && (me.role === 'owner' || member.role !== 'owner');

  const changeRole = (member: Member, role: Role) =>
    updateRole.mutate(
      { userId: member.user_id, role },
      {
        onSuccess: () => toast.success(`${member.email} is now ${roleLabel(role).toLowerCase()}.`),
        onError: (error) => toast.error(errorMessage(error)),
      },
    );

  const confirmRemove = () => {
    if (removing === null) return;
    removeMember.mutate(removing.user_id, {
      onSuccess: () => {
        toast.success(`${removing.email} was removed from the organization.`);
        setRemoving(null);
      },
      onError: (error) => toast.error(errorMessage(error)),
    });
  };

  const memberColumns: Column<Member>[] = [
    {
      key: 'email',
      header: 'Member',
      render: (member) => (
        <span className="row">
          {member.email}
          {member.user_id === me.user.id && <Badge tone="info">You</Badge>}
        </span>
      ),
    },
    {
      key: 'role',
      header: 'Role',
      width: '180px',
      render: (member) =>
        canEdit(member) ? (
          <select
            className="select"
            aria-label={`Role for ${member.email}`}
            value={member.role}
            disabled={updateRole.isPending}
            onChange={(event) => changeRole(member, event.target.value as Role)}
          >
            {assignableRoles.map((role) => (
              <option key={role} value={role}>
                {roleLabel(role)}
              </option>
            ))}
          </select>
        ) : (
          <Badge>{roleLabel(member.role)}</Badge>
        ),
    },
    { key: 'joined', header: 'Joined', width: '160px', render: (member) => formatDate(member.joined_at) },
  ];
  if (canManage) {
    memberColumns.push({
      key: 'actions',
      header: <span className="sr-only">Actions</span>,
      width: '110px',
      render: (member) =>
        canEdit(member) && (
          <Button size="sm" variant="ghost" onClick={() => setRemoving(member)} aria-label={`Remove ${member.email}`}>
            Remove
          </Button>
        ),
    });
  }

  const inviteColumns: Column<Invite>[] = [
    { key: 'email', header: 'Email', render: (invite) => invite.email },
    { key: 'role', header: 'Role', width: '180px', render: (invite) => <Badge>{roleLabel(invite.role)}</Badge> },
    { key: 'expires', header: 'Expires', width: '160px', render: (invite) => formatDate(invite.expires_at) },
    {
      key: 'actions',
      header: <span className="sr-only">Actions</span>,
      width: '110px',
      render: (invite) => (
        <Button
          size="sm"
          variant="ghost"
          aria-label={`Revoke invite for ${invite.email}`}
          onClick={() =>
            revokeInvite.mutate(invite.id, {
              onSuccess: () => toast.success(`Invite for ${invite.email} revoked.`),
              onError: (error) => toast.error(errorMessage(error)),
            })
          }
        >
          Revoke
        </Button>
      ),
    },
  ];
  const pendingInvites = invites.data?.filter((invite) => invite.accepted_at == null) ?? [];

  return (
    <>
      <PageHeader
        title="Team"
        subtitle={canManage ? 'Manage who can access your organization.' : 'People with access to your organization.'}
        actions={
          canManage ? (
            <Button variant="primary" onClick={() => setInviteOpen(true)}>
              Invite member
            </Button>
          ) : undefined
        }
      />
      <div className="stack">
        <Card title="Members" flush>
          {members.isPending && <SkeletonRows rows={3} label="Loading members" />}
          {members.isError && <ErrorState error={members.error} onRetry={() => void members.refetch()} />}
          {members.isSuccess && (
            <Table caption="Organization members" columns={memberColumns} rows={members.data} rowKey={(member) => member.user_id} />
          )}
        </Card>
        {canManage && (
          <Card title="Pending invitations" flush>
            {invites.isPending && <SkeletonRows rows={2} label="Loading invitations" />}
            {invites.isError && <ErrorState error={invites.error} onRetry={() => void invites.refetch()} />}
            {invites.isSuccess &&
              (pendingInvites.length === 0 ? (
                <EmptyState icon={<MailIcon size={22} />} title="No pending invitations" description="Invite a teammate to share this workspace." />
              ) : (
                <Table caption="Pending invitations" columns={inviteColumns} rows={pendingInvites} rowKey={(invite) => invite.id} />
              ))}
          </Card>
        )}
      </div>
      {canManage && <InviteModal open={inviteOpen} onClose={() => setInviteOpen(false)} />}
      <Modal
        open={removing !== null}
        onClose={() => setRemoving(null)}
        title="Remove member?"
        description={removing ? `${removing.email} will lose access to this organization immediately.` : undefined}
        footer={
          <>
            <Button variant="ghost" onClick={() => setRemoving(null)}>
              Cancel
            </Button>
            <Button variant="danger" loading={removeMember.isPending} onClick={confirmRemove}>
              Remove member
            </Button>
          </>
        }
      >
        <p className="muted">Their past actions stay in the audit log.</p>
      </Modal>
    </>
  );
}

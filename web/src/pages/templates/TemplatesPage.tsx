import { useState } from 'react';
import { Link } from 'react-router-dom';
import { errorMessage } from '../../api/errors';
import type { Template } from '../../api/types';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Badge, Button, Card, EmptyState, ErrorState, Modal, SkeletonRows, Table, useToast, type Column } from '../../components';
import { TemplateIcon } from '../../components/icons';
import { PageHeader } from '../../layout/PageHeader';
import { useCloneTemplate, useDeleteTemplate, useSetDefaultTemplate, useTemplates } from './api';
import { architecturesLabel, CAPACITY_LABEL, diskLabel, STRATEGY_LABEL, TEMPLATES_PATH, templatePath } from './spec';

export const NEW_TEMPLATE_PATH = `${TEMPLATES_PATH}/new`;

/** At most this many families in a row; the rest are counted. */
const SHOWN_FAMILIES = 4;

/** The organization's node templates: list, clone, default, delete; create and edit open the wizard. */
export function TemplatesPage() {
  const canManage = canManageOrg(useMe());
  const templates = useTemplates();
  const clone = useCloneTemplate();
  const setDefault = useSetDefaultTemplate();
  const remove = useDeleteTemplate();
  const toast = useToast();
  const [deleting, setDeleting] = useState<Template | null>(null);

  const onClone = (template: Template) =>
    clone.mutate(template, {
      onSuccess: (copy) => toast.success(`Copied ${template.name} as “${copy.name}”.`),
      onError: (error) => toast.error(errorMessage(error)),
    });

  const onSetDefault = (template: Template) =>
    setDefault.mutate(template, {
      onSuccess: () => toast.success(`${template.name} is now the default template.`),
      onError: (error) => toast.error(errorMessage(error)),
    });

  const closeDelete = () => {
    remove.reset();
    setDeleting(null);
  };

  const confirmDelete = () => {
    if (deleting === null) return;
    remove.mutate(deleting, {
      onSuccess: () => {
        toast.success(`${deleting.name} was deleted.`);
        closeDelete();
      },
    });
  };

  const columns: Column<Template>[] = [
    {
      key: 'name',
      header: 'Template',
      render: (template) => (
        <div className="cell-stack template-name">
          <span className="row row--wrap">
            <Link to={templatePath(template.id)} className="cell-title">
              {template.name}
            </Link>
            {template.is_default && <Badge tone="info">Default</Badge>}
          </span>
          {template.description && <span className="muted template-description">{template.description}</span>}
        </div>
      ),
    },
    {
      key: 'families',
      header: 'Instance families',
      render: ({ spec }) => {
        const rest = spec.families.length - SHOWN_FAMILIES;
        return (
          <div className="cell-stack">
            <span className="mono" title={spec.families.join(', ')}>
              {spec.families.slice(0, SHOWN_FAMILIES).join(', ')}
              {rest > 0 && <span className="muted"> +{rest} more</span>}
            </span>
            <span className="muted">{architecturesLabel(spec.architectures)}</span>
          </div>
        );
      },
    },
    {
      key: 'purchasing',
      header: 'Purchasing',
      render: ({ spec }) => (
        <div className="cell-stack nowrap">
          <span>{CAPACITY_LABEL[spec.capacity_type]}</span>
          {spec.capacity_type !== 'on_demand' && (
            <>
              <span className="muted">{STRATEGY_LABEL[spec.strategy]}</span>
              <span className="muted">{spec.on_demand_fallback ? 'On-Demand fallback' : 'No On-Demand fallback'}</span>
            </>
          )}
        </div>
      ),
    },
    { key: 'disk', header: 'Root disk', render: ({ spec }) => <span className="nowrap">{diskLabel(spec.storage)}</span> },
    {
      key: 'used',
      header: 'Used by',
      render: (template) => {
        const names = template.used_by.map((user) => user.cluster_name);
        if (names.length === 0) return <span className="muted nowrap">No clusters</span>;
        return (
          <div className="cell-stack">
            <span className="nowrap">
              {names.length} cluster{names.length === 1 ? '' : 's'}
            </span>
            <span className="muted" title={names.join(', ')}>
              {names.slice(0, 2).join(', ')}
              {names.length > 2 ? ` +${names.length - 2}` : ''}
            </span>
          </div>
        );
      },
    },
  ];
  if (canManage) {
    columns.push({
      key: 'actions',
      header: <span className="sr-only">Actions</span>,
      align: 'right',
      render: (template) => (
        <div className="row row--end template-actions">
          <Link to={templatePath(template.id)} className="btn btn--ghost btn--sm" aria-label={`Edit ${template.name}`}>
            Edit
          </Link>
          <Button size="sm" variant="ghost" aria-label={`Clone ${template.name}`} disabled={clone.isPending} onClick={() => onClone(template)}>
            Clone
          </Button>
          {!template.is_default && (
            <Button size="sm" variant="ghost" aria-label={`Set ${template.name} as default`} disabled={setDefault.isPending} onClick={() => onSetDefault(template)}>
              Set as default
            </Button>
          )}
          <Button size="sm" variant="ghost" className="btn--danger-text" aria-label={`Delete ${template.name}`} onClick={() => setDeleting(template)}>
            Delete
          </Button>
        </div>
      ),
    });
  }

  const createButton = canManage ? (
    <Link to={NEW_TEMPLATE_PATH} className="btn btn--primary">
      Create template
    </Link>
  ) : undefined;
  const empty = templates.isSuccess && templates.data.length === 0;

  return (
    <>
      <PageHeader
        title="Node templates"
        subtitle="Reusable rules for the nodes Spot Optimizer launches. Link a template from a cluster's optimization policy; changing it updates every cluster that uses it."
        actions={empty ? undefined : createButton}
      />
      <Card flush>
        {templates.isPending && <SkeletonRows rows={3} label="Loading templates" />}
        {templates.isError && <ErrorState error={templates.error} title="Could not load the templates" onRetry={() => void templates.refetch()} />}
        {empty && (
          <EmptyState
            icon={<TemplateIcon size={22} />}
            title="No node templates yet"
            description={
              <>
                A node template says which instance families and architectures new nodes may use, whether they are bought as spot or On-Demand, and
                their root disk, security groups, labels and taints. Define it once and link it from each cluster&apos;s optimization policy.
                {!canManage && ' Ask an owner or admin of your organization to create one.'}
              </>
            }
            action={createButton}
          />
        )}
        {templates.isSuccess && templates.data.length > 0 && (
          <Table caption="Node templates" columns={columns} rows={templates.data} rowKey={(template) => template.id} />
        )}
      </Card>
      <Modal
        open={deleting !== null}
        onClose={closeDelete}
        title={deleting ? `Delete ${deleting.name}?` : 'Delete template?'}
        description="Clusters can no longer link it. This cannot be undone."
        footer={
          <>
            <Button variant="ghost" onClick={closeDelete}>
              Cancel
            </Button>
            <Button variant="danger" loading={remove.isPending} onClick={confirmDelete}>
              Delete template
            </Button>
          </>
        }
      >
        <div className="stack">
          {remove.isError && (
            <div className="form-alert" role="alert">
              {errorMessage(remove.error)}
            </div>
          )}
          {deleting !== null && deleting.used_by.length > 0 ? (
            <p>
              {remove.isError ? 'Open' : deleting.used_by.length === 1 ? 'This cluster uses it:' : 'These clusters use it:'}{' '}
              {deleting.used_by.map((user, index) => (
                <span key={user.cluster_id}>
                  {index > 0 && ', '}
                  <Link to={`/clusters/${encodeURIComponent(user.cluster_id)}`}>{user.cluster_name}</Link>
                </span>
              ))}
              {remove.isError
                ? ` and choose another template in ${deleting.used_by.length === 1 ? 'its' : 'their'} optimization policy.`
                : `. Choose another template in ${deleting.used_by.length === 1 ? 'its' : 'their'} optimization policy first.`}
            </p>
          ) : (
            <p className="muted">No cluster uses it.{deleting?.is_default ? ' The oldest remaining template becomes the default.' : ''}</p>
          )}
        </div>
      </Modal>
    </>
  );
}

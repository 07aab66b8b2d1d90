import { Card } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { NoCloudAccountState } from '../common/NoCloudAccountState';

export function CloudIntegrationsPage() {
  return (
    <>
      <PageHeader title="Cloud integrations" subtitle="AWS accounts linked to your organization." />
      <Card>
        <NoCloudAccountState description="Link an AWS account with a read-only IAM role to start discovering your fleet." />
      </Card>
    </>
  );
}

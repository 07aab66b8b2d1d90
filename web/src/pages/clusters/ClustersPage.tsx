import { Card } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { NoCloudAccountState } from '../common/NoCloudAccountState';

export function ClustersPage() {
  return (
    <>
      <PageHeader title="Clusters" subtitle="Every EKS cluster discovered in your connected accounts." />
      <Card>
        <NoCloudAccountState description="Clusters appear here once an AWS account is connected and the first discovery scan finishes." />
      </Card>
    </>
  );
}

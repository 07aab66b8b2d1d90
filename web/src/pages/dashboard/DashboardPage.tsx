import { Card } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { NoCloudAccountState } from '../common/NoCloudAccountState';

export function DashboardPage() {
  return (
    <>
      <PageHeader title="Dashboard" subtitle="Spend, waste and savings opportunities across your clusters." />
      <Card>
        <NoCloudAccountState description="Connect an AWS account to see your monthly run rate, bin-packing waste and potential Spot savings." />
      </Card>
    </>
  );
}

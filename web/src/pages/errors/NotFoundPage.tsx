import { Link } from 'react-router-dom';
import { EmptyState } from '../../components';

export function NotFoundPage() {
  return (
    <div className="centered">
      <EmptyState icon="?" title="Page not found" description="The page you are looking for does not exist or has moved." action={<Link to="/">Go to your workspace</Link>} />
    </div>
  );
}

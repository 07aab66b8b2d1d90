import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router-dom';
import { api, unwrap } from '../../api/client';
import { errorMessage } from '../../api/errors';
import { meQueryKey } from '../../auth/hooks';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Button, Card, EmptyState, useToast } from '../../components';

export function OnboardingPage() {
  const me = useMe();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const toast = useToast();

  // Only owners and admins can record the org-wide choice; a viewer just moves on.
  const skip = useMutation({
    mutationFn: async () => {
      if (canManageOrg(me)) await unwrap(api.POST('/api/org/onboarding', { body: { state: 'skipped' } }));
    },
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: meQueryKey });
      navigate('/dashboard');
    },
    onError: (error) => toast.error(errorMessage(error)),
  });

  return (
    <Card>
      <EmptyState
        title={`Welcome to Spot Optimizer, ${me.organization.name}`}
        description="No cloud account connected yet. Connect your AWS infrastructure to see where your compute spend goes and how much Spot capacity could save."
        action={
          <Button variant="secondary" loading={skip.isPending} onClick={() => skip.mutate()}>
            Skip for now
          </Button>
        }
      />
    </Card>
  );
}

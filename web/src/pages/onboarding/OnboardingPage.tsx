import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router-dom';
import { api, unwrap } from '../../api/client';
import { errorMessage } from '../../api/errors';
import type { Account, OnboardingState } from '../../api/types';
import { meQueryKey } from '../../auth/hooks';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Button, Card, useToast } from '../../components';
import { KeysStep } from './KeysStep';
import { RoleStep } from './RoleStep';
import { ScanStep } from './ScanStep';

type Step = 'welcome' | 'choose' | 'role' | 'keys' | 'scan';

const STAGES = ['Welcome', 'Connect', 'Discover'] as const;
const STAGE_OF: Record<Step, number> = { welcome: 0, choose: 1, role: 1, keys: 1, scan: 2 };
const INTEGRATIONS_PATH = '/settings/cloud-integrations';

/**
 * Connect-an-account wizard. On first login it records whether the organization finished or
 * skipped onboarding; with `?add=1` (from Cloud integrations) it only links another account.
 * Viewers cannot link accounts and get a notice instead.
 */
export function OnboardingPage() {
  const me = useMe();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const adding = params.get('add') === '1';
  const [step, setStep] = useState<Step>(adding ? 'choose' : 'welcome');
  const [account, setAccount] = useState<Account | null>(null);
  const finish = useFinishOnboarding();
  const stepRef = useMoveFocusToHeading(step);

  if (!canManageOrg(me)) {
    return (
      <div className="wizard">
        <Card>
          <ViewerNotice orgName={me.organization.name} onContinue={() => navigate(adding ? INTEGRATIONS_PATH : '/dashboard')} />
        </Card>
      </div>
    );
  }

  const linked = (created: Account) => {
    setAccount(created);
    setStep('scan');
  };
  const skip = () => finish.mutate('skipped');
  const stages = adding ? STAGES.slice(1) : STAGES;
  const current = STAGE_OF[step] - (adding ? 1 : 0);

  return (
    <div className="wizard">
      <ol className="wizard__stages" aria-label="Onboarding progress">
        {stages.map((label, index) => (
          <li
            key={label}
            className={index < current ? 'wizard__stage wizard__stage--done' : 'wizard__stage'}
            aria-current={index === current ? 'step' : undefined}
          >
            <span className="wizard__stage-number" aria-hidden="true">
              {index + 1}
            </span>
            {label}
          </li>
        ))}
      </ol>
      <Card>
        <div ref={stepRef}>
          {step === 'welcome' && <Welcome orgName={me.organization.name} onStart={() => setStep('choose')} onSkip={skip} skipping={finish.isPending} />}
          {step === 'choose' && (
            <ChooseMethod
              onChoose={setStep}
              backLabel={adding ? 'Cancel' : 'Back'}
              onBack={adding ? () => navigate(INTEGRATIONS_PATH) : () => setStep('welcome')}
            />
          )}
          {step === 'role' && <RoleStep onLinked={linked} onBack={() => setStep('choose')} />}
          {step === 'keys' && <KeysStep onLinked={linked} onBack={() => setStep('choose')} />}
          {step === 'scan' && account !== null && (
            <ScanStep
              account={account}
              finishLabel={adding ? 'Back to cloud integrations' : 'Go to dashboard'}
              finishing={finish.isPending}
              onFinish={adding ? () => navigate(INTEGRATIONS_PATH) : () => finish.mutate('completed')}
              onRetry={() => setStep('choose')}
            />
          )}
        </div>
      </Card>
      {!adding && (step === 'choose' || step === 'role' || step === 'keys') && (
        <div className="row row--end">
          <Button variant="ghost" loading={finish.isPending} onClick={skip}>
            Skip for now
          </Button>
        </div>
      )}
    </div>
  );
}

/** After each step change, moves focus to the new step's heading so screen readers announce it. */
function useMoveFocusToHeading(step: Step) {
  const ref = useRef<HTMLDivElement>(null);
  const previous = useRef(step);
  useEffect(() => {
    if (previous.current === step) return;
    previous.current = step;
    const heading = ref.current?.querySelector<HTMLElement>('h1, h2');
    heading?.setAttribute('tabindex', '-1');
    heading?.focus();
  }, [step]);
  return ref;
}

/** Records how the organization left first-run onboarding, then opens the dashboard. */
function useFinishOnboarding() {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const toast = useToast();
  return useMutation({
    mutationFn: (state: OnboardingState) => unwrap(api.POST('/api/org/onboarding', { body: { state } })),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: meQueryKey });
      navigate('/dashboard');
    },
    onError: (error) => toast.error(errorMessage(error)),
  });
}

function Welcome({ orgName, onStart, onSkip, skipping }: { orgName: string; onStart: () => void; onSkip: () => void; skipping: boolean }) {
  return (
    <div className="stack wizard__intro">
      <h1>Welcome to Spot Optimizer, {orgName}</h1>
      <p className="muted">
        Connect an AWS account to see where your compute spend goes and how much Spot capacity could save. It takes about five
        minutes; access is read-only unless you opt into automated actions.
      </p>
      <div className="row">
        <Button variant="primary" onClick={onStart}>
          Connect AWS account
        </Button>
        <Button variant="ghost" loading={skipping} onClick={onSkip}>
          Skip for now
        </Button>
      </div>
    </div>
  );
}

function ChooseMethod({ onChoose, onBack, backLabel }: { onChoose: (step: 'role' | 'keys') => void; onBack: () => void; backLabel: string }) {
  return (
    <div className="stack">
      <div>
        <h2>How should Spot Optimizer connect?</h2>
        <p className="muted">You can add more accounts later from Settings → Cloud integrations.</p>
      </div>
      <div className="choices">
        <button type="button" className="choice" onClick={() => onChoose('role')}>
          <span className="choice__title">
            Production <span className="badge badge--success">Recommended</span>
          </span>
          <span className="choice__description">
            Deploy a read-only IAM role with CloudFormation. Spot Optimizer assumes it with your external ID; no keys are stored.
          </span>
        </button>
        <button type="button" className="choice" onClick={() => onChoose('keys')}>
          <span className="choice__title">Lab</span>
          <span className="choice__description">Paste an IAM user&apos;s access keys. Quick for test accounts; not for production.</span>
        </button>
      </div>
      <div className="row">
        <Button variant="ghost" onClick={onBack}>
          {backLabel}
        </Button>
      </div>
    </div>
  );
}

function ViewerNotice({ orgName, onContinue }: { orgName: string; onContinue: () => void }) {
  return (
    <div className="stack wizard__intro">
      <h1>Welcome to Spot Optimizer, {orgName}</h1>
      <p className="muted">No cloud account is connected yet. Ask an owner or admin of your organization to connect one.</p>
      <div className="row">
        <Button variant="primary" onClick={onContinue}>
          Continue to dashboard
        </Button>
      </div>
    </div>
  );
}

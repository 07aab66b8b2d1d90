import type { Account } from '../../api/types';
import type { BadgeTone } from '../../components';

/** Where "connect an account" buttons lead: the onboarding wizard without its welcome step. */
export const CONNECT_ACCOUNT_PATH = '/onboarding?add=1';

/** The server keeps a `pending` placeholder row per organization until an account is linked. */
export function isLinked(account: Account): boolean {
  return account.aws_account_id_masked != null;
}

const STATUS: Record<string, { label: string; tone: BadgeTone }> = {
  pending: { label: 'Pending', tone: 'neutral' },
  scanning: { label: 'Scanning', tone: 'info' },
  active: { label: 'Active', tone: 'success' },
  error: { label: 'Error', tone: 'danger' },
};

export function accountStatus(status: string): { label: string; tone: BadgeTone } {
  return STATUS[status] ?? { label: status, tone: 'neutral' };
}

const METHOD_LABEL: Record<string, string> = { role: 'IAM role', keys: 'Access keys' };

export function methodLabel(method: string): string {
  return METHOD_LABEL[method] ?? method;
}

const PHASE_LABEL: Record<string, string> = {
  queued: 'Waiting to start',
  connecting: 'Connecting to AWS',
  instances: 'Discovering EC2 instances',
  prices: 'Reading Spot and On-Demand prices',
  clusters: 'Discovering EKS clusters',
  volumes: 'Reading EBS volumes',
  snapshots: 'Reading EBS snapshots',
  done: 'Scan complete',
};

export function phaseLabel(phase: string | null | undefined): string {
  if (phase == null) return 'Preparing scan';
  return PHASE_LABEL[phase] ?? phase;
}

/** Regions the server accepts when linking (kept in step with `REGIONS` in api/src/routes/accounts.rs). */
export const AWS_REGIONS = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'ca-central-1',
  'sa-east-1',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-central-1',
  'eu-central-2',
  'eu-north-1',
  'eu-south-1',
  'eu-south-2',
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ap-east-1',
  'me-south-1',
  'me-central-1',
  'af-south-1',
  'il-central-1',
] as const;

export const DEFAULT_REGION = 'us-east-1';

/** Client-side checks mirroring the server's; the server stays the authority. */
export const accountRules = {
  name: {
    required: 'Give the account a name.',
    maxLength: { value: 100, message: 'Use at most 100 characters.' },
    validate: (value: string) => value.trim() !== '' || 'Give the account a name.',
  },
  awsAccountId: {
    required: 'Enter the 12-digit AWS account ID.',
    pattern: { value: /^\d{12}$/, message: 'An AWS account ID is exactly 12 digits.' },
  },
  roleArn: {
    required: 'Enter the ARN of the role the stack created.',
    pattern: { value: /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, message: 'Use the form arn:aws:iam::123456789012:role/SpotOptimizer.' },
  },
  accessKeyId: {
    required: 'Enter the access key ID.',
    pattern: { value: /^(AKIA|ASIA)[A-Z0-9]{16}$/, message: 'An access key ID is 20 characters starting with AKIA.' },
  },
  secretAccessKey: {
    required: 'Enter the secret access key.',
    pattern: { value: /^[A-Za-z0-9/+]{40}$/, message: 'The secret access key is the 40-character value shown when the key was created.' },
  },
};

/** The CloudFormation stack always names the role `SpotOptimizer`, so its ARN follows from the account ID. */
export function defaultRoleArn(awsAccountId: string): string {
  return `arn:aws:iam::${awsAccountId}:role/SpotOptimizer`;
}

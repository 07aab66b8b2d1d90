import type { components } from './schema';

type Schemas = components['schemas'];

export type TokenResponse = Schemas['TokenResponse'];
export type Me = Schemas['MeResponse'];
export type Role = Schemas['MemberRole'];
export type Member = Schemas['MemberView'];
export type Invite = Schemas['InviteView'];
export type InviteCreated = Schemas['InviteCreated'];
export type InviteRole = Schemas['InviteRole'];
export type AuditEntry = Schemas['AuditEntry'];
export type AuditActor = Schemas['Actor'];
export type AuditOutcome = Schemas['Outcome'];
export type AuditPage = Schemas['AuditPage'];
export type VerifyResult = Schemas['VerifyResult'];
export type OnboardingState = Schemas['OnboardingState'];
export type Account = Schemas['AccountView'];
export type ScanStatus = Schemas['ScanStatus'];
export type ScanCounts = Schemas['ScanCounts'];
export type LinkInfo = Schemas['LinkInfo'];
export type VerifyRequest = Schemas['VerifyRequest'];
export type KeysRequest = Schemas['KeysRequest'];

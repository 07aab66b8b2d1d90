import type { components } from './schema';

type Schemas = components['schemas'];

export type TokenResponse = Schemas['TokenResponse'];
export type Me = Schemas['Me'];
export type Role = Me['role'];
export type Member = Schemas['Member'];
export type Invite = Schemas['Invite'];
export type InviteCreated = Schemas['InviteCreated'];
export type InviteRole = Schemas['CreateInviteRequest']['role'];
export type AuditEntry = Schemas['AuditEntry'];
export type AuditActor = Schemas['AuditActor'];
export type AuditOutcome = Schemas['AuditOutcome'];
export type AuditPage = Schemas['AuditPage'];
export type VerifyResult = Schemas['VerifyResult'];

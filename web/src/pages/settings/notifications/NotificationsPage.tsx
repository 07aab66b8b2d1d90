import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, errorMessage } from '../../../api/errors';
import { canManageOrg, useMe } from '../../../auth/MeContext';
import { Badge, Button, Card, CheckboxField, EmptyState, ErrorState, SkeletonRows, Table, TextField, useToast, type BadgeTone, type Column } from '../../../components';
import { MailIcon } from '../../../components/icons';
import { PageHeader } from '../../../layout/PageHeader';
import '../../../styles/notify.css';
import { formatDateTime } from '../../../lib/format';
import {
  useDeliveries,
  useNotificationSettings,
  useSaveNotificationSettings,
  useSendTest,
  type DeliveryAttempt,
  type NotificationSettings,
  type NotificationView,
} from './api';

export const NOTIFICATIONS_PATH = '/settings/notifications';

const KIND_LABEL: Record<string, string> = {
  pre_sleep: 'Pre-sleep notice',
  weekly_report: 'Weekly report',
  test: 'Test',
};

export function statusTone(status: string): BadgeTone {
  switch (status) {
    case 'delivered':
      return 'success';
    case 'failed':
      return 'danger';
    case 'partial':
      return 'warning';
    case 'pending':
    case 'sending':
      return 'info';
    default:
      return 'neutral';
  }
}

/** One attempt in a line: "webhook #2 · retry · HTTP 503 · 41 ms". */
export function describeAttempt(a: DeliveryAttempt): string {
  const what = a.status_code != null ? `HTTP ${a.status_code}` : a.error ?? '';
  const detail = a.status_code != null && a.error && a.outcome !== 'success' ? a.error : what;
  return [`${a.channel} #${a.attempt}`, a.outcome, detail, `${a.duration_ms} ms`].filter(Boolean).join(' · ');
}

/** Recipients typed one per line or separated by commas. */
export function parseRecipients(text: string): string[] {
  return text
    .split(/[\n,;]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

type Draft = { webhook: string; recipients: string; preSleep: boolean; weekly: boolean };

function draftOf(s: NotificationSettings): Draft {
  return {
    webhook: s.webhook_url ?? '',
    recipients: s.email_recipients.join('\n'),
    preSleep: s.pre_sleep_enabled,
    weekly: s.weekly_report_enabled,
  };
}

function SettingsForm({ settings, canManage }: { settings: NotificationSettings; canManage: boolean }) {
  const save = useSaveNotificationSettings();
  const sendTest = useSendTest();
  const toast = useToast();
  const [draft, setDraft] = useState<Draft>(() => draftOf(settings));
  const [errors, setErrors] = useState<Record<string, string>>({});
  useEffect(() => setDraft(draftOf(settings)), [settings]);
  const saved = draftOf(settings);
  const dirty = JSON.stringify(saved) !== JSON.stringify(draft);
  const configured = settings.webhook_configured || settings.email_recipients.length > 0;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setErrors({});
    save.mutate(
      {
        webhook_url: draft.webhook.trim() === '' ? null : draft.webhook.trim(),
        email_recipients: parseRecipients(draft.recipients),
        pre_sleep_enabled: draft.preSleep,
        weekly_report_enabled: draft.weekly,
      },
      {
        onSuccess: () => toast.success('Notification settings saved.'),
        onError: (error) => {
          if (error instanceof ApiError && error.field) setErrors({ [error.field]: error.message });
          else toast.error(errorMessage(error));
        },
      },
    );
  };

  const test = () =>
    sendTest.mutate(undefined, {
      onSuccess: () => toast.success('Test notification queued; its delivery appears below within seconds.'),
      onError: (error) => toast.error(errorMessage(error)),
    });

  return (
    <form onSubmit={submit} className="stack" aria-label="Notification settings">
      <Card title="Slack-compatible webhook">
        <TextField
          label="Webhook URL"
          type="url"
          placeholder="https://hooks.slack.com/services/…"
          value={draft.webhook}
          disabled={!canManage}
          error={errors.webhook_url}
          hint="An incoming webhook of Slack, Mattermost, Microsoft Teams (Slack format) or your own endpoint. Failed deliveries are retried with backoff and every attempt is listed below."
          onChange={(e) => setDraft({ ...draft, webhook: e.target.value })}
        />
      </Card>
      <Card title="E-mail">
        {!settings.email_configured && (
          <div className="callout callout--warning" role="status">
            <span>
              E-mail is not configured on this server, so recipients receive nothing. The operator enables it with{' '}
              <code>SPOT_SMTP_URL</code> (and <code>SPOT_SMTP_FROM</code>); until then use the webhook.
            </span>
          </div>
        )}
        <div className="field">
          <label className="field__label" htmlFor="notify-recipients">
            Recipients
          </label>
          <textarea
            id="notify-recipients"
            className="input"
            rows={3}
            value={draft.recipients}
            disabled={!canManage}
            aria-invalid={Boolean(errors.email_recipients)}
            aria-describedby="notify-recipients-hint"
            placeholder={'finops@example.com\ncto@example.com'}
            onChange={(e) => setDraft({ ...draft, recipients: e.target.value })}
          />
          <span id="notify-recipients-hint" className="field__hint">
            One address per line (at most 20).
          </span>
          {errors.email_recipients && <span className="field__error">{errors.email_recipients}</span>}
        </div>
      </Card>
      <Card title="What to send">
        <CheckboxField
          label="Pre-sleep notices"
          hint="30 minutes before a cluster's scheduled hibernation, once per sleep."
          checked={draft.preSleep}
          disabled={!canManage}
          onChange={(e) => setDraft({ ...draft, preSleep: e.target.checked })}
        />
        <CheckboxField
          label="Weekly report"
          hint="Every Monday: spend, savings, efficiency grade and its trend, the top recommended action, hibernation savings."
          checked={draft.weekly}
          disabled={!canManage}
          onChange={(e) => setDraft({ ...draft, weekly: e.target.checked })}
        />
      </Card>
      {canManage && (
        <div className="row">
          <Button type="submit" variant="primary" loading={save.isPending} disabled={!dirty}>
            Save settings
          </Button>
          <Button
            type="button"
            onClick={test}
            loading={sendTest.isPending}
            disabled={!configured || dirty}
            title={dirty ? 'Save your changes first' : configured ? undefined : 'Configure a webhook or recipients first'}
          >
            Send test notification
          </Button>
          {dirty && <span className="muted">Unsaved changes</span>}
        </div>
      )}
    </form>
  );
}

function DeliveryHistory() {
  const deliveries = useDeliveries();
  const columns: Column<NotificationView>[] = [
    { key: 'at', header: 'Queued', width: '190px', render: (n) => formatDateTime(n.created_at) },
    { key: 'kind', header: 'Kind', width: '150px', render: (n) => KIND_LABEL[n.kind] ?? n.kind },
    {
      key: 'subject',
      header: 'Message and attempts',
      render: (n) => (
        <div>
          <div>{n.subject}</div>
          {n.summary && <div className="muted">{n.summary}</div>}
          {n.attempts.length > 0 && (
            <ol className="attempts" aria-label={`Attempts for ${n.subject}`}>
              {n.attempts.map((a) => (
                <li key={`${a.channel}-${a.attempt}-${a.at}`}>{describeAttempt(a)}</li>
              ))}
            </ol>
          )}
        </div>
      ),
    },
    { key: 'status', header: 'Status', width: '120px', render: (n) => <Badge tone={statusTone(n.status)}>{n.status}</Badge> },
  ];
  return (
    <Card title="Delivery history" flush>
      {deliveries.isPending && <SkeletonRows rows={3} label="Loading deliveries" />}
      {deliveries.isError && <ErrorState error={deliveries.error} onRetry={() => void deliveries.refetch()} />}
      {deliveries.isSuccess &&
        (deliveries.data.items.length === 0 ? (
          <EmptyState icon={<MailIcon size={22} />} title="Nothing sent yet" description="Notices, reports and test messages appear here with every delivery attempt." />
        ) : (
          <Table caption="Notification deliveries" columns={columns} rows={deliveries.data.items} rowKey={(n) => n.id} />
        ))}
    </Card>
  );
}

export function NotificationsPage() {
  const me = useMe();
  const canManage = canManageOrg(me);
  const settings = useNotificationSettings();
  return (
    <>
      <PageHeader
        title="Notifications"
        subtitle={
          canManage
            ? 'Where pre-sleep notices and weekly reports go.'
            : 'Where pre-sleep notices and weekly reports go (admins and owners can change this).'
        }
      />
      <div className="stack">
        {settings.isPending && <SkeletonRows rows={4} label="Loading notification settings" />}
        {settings.isError && <ErrorState error={settings.error} onRetry={() => void settings.refetch()} />}
        {settings.isSuccess && <SettingsForm settings={settings.data} canManage={canManage} />}
        <DeliveryHistory />
      </div>
    </>
  );
}

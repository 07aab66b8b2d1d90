import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import { Navigate, Route, Routes } from 'react-router-dom';
import { AuthGateway } from './auth/AuthGateway';
import { RedirectIfSignedIn, RequireAuth } from './auth/RequireAuth';
import { SessionWatcher } from './auth/SessionWatcher';
import { ToastProvider } from './components';
import { AppShell } from './layout/AppShell';
import { CLIENTS_PATH, ClientsPage } from './pages/admin/clients/ClientsPage';
import { SYSTEM_HEALTH_PATH, SystemHealthPage } from './pages/admin/health/SystemHealthPage';
import { OPERATIONS_PATH, OperationsPage } from './pages/admin/operations/OperationsPage';
import { PROFILE_PATH, ProfilePage } from './pages/admin/profile/ProfilePage';
import { ACCEPT_OWNER_INVITE_PATH, AcceptOwnerInvitePage, FORGOT_PASSWORD_PATH, ForgotPasswordPage, RESET_PASSWORD_PATH, ResetPasswordPage } from './pages/auth/PasswordResetPages';
import { RISK_MODEL_PATH, RiskModelPage } from './pages/admin/risk/RiskModelPage';
import { LAB_PATH, LabPage } from './pages/admin/lab/LabPage';
import { AuditLogsPage } from './pages/audit/AuditLogsPage';
import { AcceptInvitePage } from './pages/auth/AcceptInvitePage';
import { LoginPage } from './pages/auth/LoginPage';
import { SignupPage } from './pages/auth/SignupPage';
import { AddClusterPage } from './pages/clusters/AddClusterPage';
import { ClusterDetailPage } from './pages/clusters/ClusterDetailPage';
import { ClustersPage } from './pages/clusters/ClustersPage';
import { DashboardPage } from './pages/dashboard/DashboardPage';
import { HIBERNATION_PATH, HibernationPage } from './pages/hibernation/HibernationPage';
import { NotFoundPage } from './pages/errors/NotFoundPage';
import { OnboardingPage } from './pages/onboarding/OnboardingPage';
import { CloudIntegrationsPage } from './pages/settings/cloud/CloudIntegrationsPage';
import { TeamPage } from './pages/settings/team/TeamPage';
import { NOTIFICATIONS_PATH, NotificationsPage } from './pages/settings/notifications/NotificationsPage';
import { REPORTS_PATH, ReportPage, ReportsPage } from './pages/reports/ReportsPage';
import { TemplatesPage } from './pages/templates/TemplatesPage';
import { TemplateWizardPage } from './pages/templates/TemplateWizard';
import { WastePage } from './pages/waste/WastePage';

/** Opts into React Router v7 behaviour now so the upgrade is a no-op. */
export const ROUTER_FUTURE = { v7_startTransition: true, v7_relativeSplatPath: true } as const;

/** Providers and routes; the router itself is supplied by the caller (browser or memory in tests). */
export function App({ queryClient }: { queryClient: QueryClient }) {
  return (
    <QueryClientProvider client={queryClient}>
      <ToastProvider>
        <SessionWatcher />
        <Routes>
          <Route element={<RedirectIfSignedIn />}>
            <Route path="/login" element={<LoginPage />} />
            <Route path="/signup" element={<SignupPage />} />
            <Route path={FORGOT_PASSWORD_PATH} element={<ForgotPasswordPage />} />
          </Route>
          <Route path="/invite/accept" element={<AcceptInvitePage />} />
          <Route path={RESET_PASSWORD_PATH} element={<ResetPasswordPage />} />
          <Route path={ACCEPT_OWNER_INVITE_PATH} element={<AcceptOwnerInvitePage />} />
          <Route element={<RequireAuth />}>
            <Route index element={<AuthGateway />} />
            <Route element={<AppShell />}>
              <Route path="/onboarding" element={<OnboardingPage />} />
              <Route path="/dashboard" element={<DashboardPage />} />
              <Route path="/clusters" element={<ClustersPage />} />
              <Route path="/clusters/add" element={<AddClusterPage />} />
              <Route path="/clusters/:id" element={<ClusterDetailPage />} />
              <Route path="/templates" element={<TemplatesPage />} />
              <Route path="/templates/new" element={<TemplateWizardPage />} />
              <Route path="/templates/:id" element={<TemplateWizardPage />} />
              <Route path="/waste" element={<WastePage />} />
              <Route path={HIBERNATION_PATH} element={<HibernationPage />} />
              <Route path="/audit-logs" element={<AuditLogsPage />} />
              <Route path="/settings" element={<Navigate to="/settings/cloud-integrations" replace />} />
              <Route path="/settings/cloud-integrations" element={<CloudIntegrationsPage />} />
              <Route path="/settings/team" element={<TeamPage />} />
              <Route path={NOTIFICATIONS_PATH} element={<NotificationsPage />} />
              <Route path={REPORTS_PATH} element={<ReportsPage />} />
              <Route path={`${REPORTS_PATH}/:id`} element={<ReportPage />} />
              <Route path={RISK_MODEL_PATH} element={<RiskModelPage />} />
              <Route path={LAB_PATH} element={<LabPage />} />
              <Route path={CLIENTS_PATH} element={<ClientsPage />} />
              <Route path={SYSTEM_HEALTH_PATH} element={<SystemHealthPage />} />
              <Route path={OPERATIONS_PATH} element={<OperationsPage />} />
              <Route path={PROFILE_PATH} element={<ProfilePage />} />
            </Route>
          </Route>
          <Route path="*" element={<NotFoundPage />} />
        </Routes>
      </ToastProvider>
    </QueryClientProvider>
  );
}

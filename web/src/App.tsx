import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import { Navigate, Route, Routes } from 'react-router-dom';
import { AuthGateway } from './auth/AuthGateway';
import { RedirectIfSignedIn, RequireAuth } from './auth/RequireAuth';
import { SessionWatcher } from './auth/SessionWatcher';
import { ToastProvider } from './components';
import { AppShell } from './layout/AppShell';
import { CLIENTS_PATH, ClientsPage } from './pages/admin/clients/ClientsPage';
import { SYSTEM_HEALTH_PATH, SystemHealthPage } from './pages/admin/health/SystemHealthPage';
import { RISK_MODEL_PATH, RiskModelPage } from './pages/admin/risk/RiskModelPage';
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
          </Route>
          <Route path="/invite/accept" element={<AcceptInvitePage />} />
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
              <Route path={RISK_MODEL_PATH} element={<RiskModelPage />} />
              <Route path={CLIENTS_PATH} element={<ClientsPage />} />
              <Route path={SYSTEM_HEALTH_PATH} element={<SystemHealthPage />} />
            </Route>
          </Route>
          <Route path="*" element={<NotFoundPage />} />
        </Routes>
      </ToastProvider>
    </QueryClientProvider>
  );
}

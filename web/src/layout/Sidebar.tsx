import { NavLink } from 'react-router-dom';
import { Brand } from './Brand';
import { useMeQuery } from '../auth/hooks';
import { isSuperAdmin } from '../auth/MeContext';
import { AuditIcon, ClustersIcon, CloudIcon, DashboardIcon, MailIcon, ModelIcon, TeamIcon, TemplateIcon, WasteIcon } from '../components/icons';
import { CLIENTS_PATH } from '../pages/admin/clients/ClientsPage';
import { SYSTEM_HEALTH_PATH } from '../pages/admin/health/SystemHealthPage';
import { OPERATIONS_PATH } from '../pages/admin/operations/OperationsPage';
import { PROFILE_PATH } from '../pages/admin/profile/ProfilePage';
import { HIBERNATION_PATH } from '../pages/hibernation/HibernationPage';
import { RISK_MODEL_PATH } from '../pages/admin/risk/RiskModelPage';
import { LAB_PATH } from '../pages/admin/lab/LabPage';
import { NOTIFICATIONS_PATH } from '../pages/settings/notifications/NotificationsPage';
import { REPORTS_PATH } from '../pages/reports/ReportsPage';

export function Sidebar() {
  // Shares the shell's `me` query; platform entries appear only once the role is known.
  const me = useMeQuery();
  // An admin acting as a client sees only what the client sees.
  const platformAdmin = me.isSuccess && isSuperAdmin(me.data) && !me.data.impersonated_by;
  return (
    <aside className="sidebar">
      <div className="sidebar__inner">
        <Brand />
        <nav className="nav" aria-label="Main">
          <NavLink to="/dashboard" className="nav__link">
            <DashboardIcon /> Dashboard
          </NavLink>
          <NavLink to="/clusters" className="nav__link">
            <ClustersIcon /> Clusters
          </NavLink>
          <NavLink to="/templates" className="nav__link">
            <TemplateIcon /> Node templates
          </NavLink>
          <NavLink to="/waste" className="nav__link">
            <WasteIcon /> Waste
          </NavLink>
          <NavLink to={HIBERNATION_PATH} className="nav__link">
            <ClustersIcon /> Cluster hibernation
          </NavLink>
          <NavLink to={REPORTS_PATH} className="nav__link">
            <DashboardIcon /> Weekly reports
          </NavLink>
          <NavLink to="/audit-logs" className="nav__link">
            <AuditIcon /> Audit Logs
          </NavLink>
          <span className="nav__section" id="nav-settings">
            Settings
          </span>
          <div className="nav" role="group" aria-labelledby="nav-settings">
            <NavLink to="/settings/cloud-integrations" className="nav__link">
              <CloudIcon /> Cloud integrations
            </NavLink>
            <NavLink to="/settings/team" className="nav__link">
              <TeamIcon /> Team
            </NavLink>
            <NavLink to={NOTIFICATIONS_PATH} className="nav__link">
              <MailIcon /> Notifications
            </NavLink>
          </div>
          {platformAdmin && (
            <>
              <span className="nav__section" id="nav-platform">
                Platform
              </span>
              <div className="nav" role="group" aria-labelledby="nav-platform">
                <NavLink to={CLIENTS_PATH} className="nav__link">
                  <TeamIcon /> Clients
                </NavLink>
                <NavLink to={RISK_MODEL_PATH} className="nav__link">
                  <ModelIcon /> AI model
                </NavLink>
                <NavLink to={LAB_PATH} className="nav__link">
                  <ModelIcon /> The Lab
                </NavLink>
                <NavLink to={OPERATIONS_PATH} className="nav__link">
                  <DashboardIcon /> Live operations
                </NavLink>
                <NavLink to={SYSTEM_HEALTH_PATH} className="nav__link">
                  <DashboardIcon /> System health
                </NavLink>
                <NavLink to={PROFILE_PATH} className="nav__link">
                  <TeamIcon /> My profile
                </NavLink>
              </div>
            </>
          )}
        </nav>
      </div>
    </aside>
  );
}

import { NavLink } from 'react-router-dom';
import { Brand } from './Brand';
import { useMeQuery } from '../auth/hooks';
import { isSuperAdmin } from '../auth/MeContext';
import { AuditIcon, ClustersIcon, CloudIcon, DashboardIcon, ModelIcon, TeamIcon, TemplateIcon, WasteIcon } from '../components/icons';
import { RISK_MODEL_PATH } from '../pages/admin/risk/RiskModelPage';

export function Sidebar() {
  // Shares the shell's `me` query; platform entries appear only once the role is known.
  const me = useMeQuery();
  const platformAdmin = me.isSuccess && isSuperAdmin(me.data);
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
          </div>
          {platformAdmin && (
            <>
              <span className="nav__section" id="nav-platform">
                Platform
              </span>
              <div className="nav" role="group" aria-labelledby="nav-platform">
                <NavLink to={RISK_MODEL_PATH} className="nav__link">
                  <ModelIcon /> AI model
                </NavLink>
              </div>
            </>
          )}
        </nav>
      </div>
    </aside>
  );
}

import { NavLink } from 'react-router-dom';
import { Brand } from './Brand';
import { AuditIcon, ClustersIcon, CloudIcon, DashboardIcon, TeamIcon, WasteIcon } from '../components/icons';

export function Sidebar() {
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
        </nav>
      </div>
    </aside>
  );
}

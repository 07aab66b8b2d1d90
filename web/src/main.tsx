import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router-dom';
import { App, ROUTER_FUTURE } from './App';
import { createQueryClient } from './api/queryClient';
import './styles/tokens.css';
import './styles/base.css';
import './styles/layout.css';
import './styles/components.css';
import './styles/accounts.css';
import './styles/inventory.css';
import './styles/dashboard.css';
import './styles/admin.css';
import './styles/lab.css';
import './styles/console.css';
import './styles/agent.css';
import './styles/templates.css';

const root = document.getElementById('root');
if (root === null) throw new Error('index.html is missing #root');

createRoot(root).render(
  <StrictMode>
    <BrowserRouter future={ROUTER_FUTURE}>
      <App queryClient={createQueryClient()} />
    </BrowserRouter>
  </StrictMode>,
);

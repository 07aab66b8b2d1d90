import { useId, useState, type KeyboardEvent } from 'react';
import { INSTALL_METHODS, type AgentToken, type InstallMethod } from '../../api/agent';
import { CopyButton } from '../../components';

const METHOD_LABEL: Record<InstallMethod, string> = { helm: 'Helm', kubectl: 'kubectl', terraform: 'Terraform' };

const METHOD_HINT: Record<InstallMethod, string> = {
  helm: 'Run in a shell whose kubeconfig points at the cluster. Installs the chart into its own namespace.',
  kubectl: 'Applies the plain manifests (namespace, service account, least-privilege role, deployment) with kubectl.',
  terraform: 'Add to a Terraform configuration that has the Helm provider configured for this cluster, then terraform apply.',
};

/**
 * The install command for each method with the new token filled in, a copy button, the
 * "shown once" warning and what the agent may and may not do.
 */
export function InstallCommands({ token, initialMethod = 'helm' }: { token: AgentToken; initialMethod?: InstallMethod }) {
  const [method, setMethod] = useState<InstallMethod>(initialMethod);
  const id = useId();
  const command = token.install[method] ?? '';

  // Arrow keys move between tabs, as in the WAI-ARIA tabs pattern.
  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (step === 0) return;
    event.preventDefault();
    const next = INSTALL_METHODS[(INSTALL_METHODS.indexOf(method) + step + INSTALL_METHODS.length) % INSTALL_METHODS.length] ?? 'helm';
    setMethod(next);
    document.getElementById(`${id}-tab-${next}`)?.focus();
  };

  return (
    <div className="stack">
      <div className="callout callout--warning" role="note">
        <p className="callout__title">This token is shown once</p>
        <p>
          Copy the command now: Spot Optimizer stores only a hash of the token (prefix <span className="mono">{token.token_prefix}</span>). If
          you lose it, rotate the token from the cluster&apos;s agent settings.
        </p>
      </div>
      <div className="tabs" role="tablist" aria-label="Install method" onKeyDown={onKeyDown}>
        {INSTALL_METHODS.map((option) => (
          <button
            key={option}
            id={`${id}-tab-${option}`}
            type="button"
            role="tab"
            className="tab"
            aria-selected={method === option}
            aria-controls={`${id}-panel`}
            tabIndex={method === option ? 0 : -1}
            onClick={() => setMethod(option)}
          >
            {METHOD_LABEL[option]}
          </button>
        ))}
      </div>
      <div id={`${id}-panel`} role="tabpanel" aria-labelledby={`${id}-tab-${method}`} className="stack stack--tight">
        <p className="muted">{METHOD_HINT[method]}</p>
        <pre className="code-block code-block--command" aria-label={`${METHOD_LABEL[method]} install command`} tabIndex={0}>
          {command}
        </pre>
        <div className="row row--wrap">
          <CopyButton value={command} label="Copy command" />
          <span className="muted">
            Connects to <span className="mono">{token.control_plane_url}</span>
          </span>
        </div>
      </div>
      <AgentPermissions />
    </div>
  );
}

/** What the agent is allowed to do in the cluster and what it never does. */
export function AgentPermissions() {
  return (
    <section className="permissions" aria-label="Agent permissions">
      <div>
        <h3>The agent can</h3>
        <ul className="permissions__list permissions__list--can">
          <li>Watch nodes, pods, PodDisruptionBudgets and events, and read node and pod usage from the metrics API</li>
          <li>Cordon, uncordon, label and taint nodes, and delete a Node object after its instance is gone</li>
          <li>Drain a node through the Eviction API, respecting PodDisruptionBudgets and grace periods</li>
          <li>Patch deployment and statefulset resource requests when you approve a rightsizing</li>
        </ul>
      </div>
      <div>
        <h3>It never</h3>
        <ul className="permissions__list permissions__list--never">
          <li>Opens an inbound port: it only makes outbound HTTPS calls to Spot Optimizer</li>
          <li>Reads Secrets or ConfigMaps: its role grants no access to them</li>
          <li>Deletes pods directly or bypasses a PodDisruptionBudget</li>
          <li>Runs as root or writes to its own filesystem</li>
        </ul>
      </div>
    </section>
  );
}

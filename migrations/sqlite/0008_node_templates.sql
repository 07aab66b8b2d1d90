-- Node templates: an organization's reusable node specifications. Exactly one may be the
-- default (a partial unique index); a cluster policy may point at one, which then cannot
-- be deleted.
CREATE TABLE node_templates (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    spec TEXT NOT NULL,
    is_default BIGINT NOT NULL DEFAULT 0,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX node_templates_name ON node_templates (organization_id, name);
CREATE UNIQUE INDEX node_templates_one_default ON node_templates (organization_id) WHERE is_default = 1;

ALTER TABLE cluster_policies ADD COLUMN template_id TEXT REFERENCES node_templates(id);
CREATE INDEX cluster_policies_template ON cluster_policies (template_id);

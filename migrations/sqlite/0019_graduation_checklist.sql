-- Every graduation of a risk model with the safety checklist computed from the Lab's
-- results at that moment (a graduation is refused unless every item passes).
CREATE TABLE model_graduations (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    graduated_by TEXT NOT NULL,
    graduated_at BIGINT NOT NULL,
    checklist TEXT NOT NULL
);
CREATE INDEX model_graduations_model ON model_graduations (model_id, graduated_at);

-- Read model: rule sets, eligibility decisions, overrides and appeals.
CREATE TABLE IF NOT EXISTS rm_rule_sets (
    rule_set_id        uuid PRIMARY KEY,
    code               text NOT NULL,
    rule_set_version   int NOT NULL,
    status             text NOT NULL,            -- draft, approved, superseded
    document           jsonb NOT NULL,
    document_hash      text NOT NULL,
    example_failures   jsonb NOT NULL,
    drafted_at         timestamptz NOT NULL,
    drafted_by         text NOT NULL,
    approved_at        timestamptz,
    approved_by        text,
    act_reference      text,
    effective_from     date,
    superseded_by      int,
    superseded_from    date,
    version            bigint NOT NULL,
    UNIQUE (code, rule_set_version)
);

CREATE TABLE IF NOT EXISTS rm_eligibility_decisions (
    decision_id               uuid PRIMARY KEY,
    household_id              uuid NOT NULL,
    sequence                  int NOT NULL,
    supersedes_decision_id    uuid,
    origin_settlement_code    text NOT NULL,
    rule_set_code             text NOT NULL,
    rule_set_version          int NOT NULL,
    rule_set_hash             text NOT NULL,
    facts                     jsonb NOT NULL,
    facts_hash                text NOT NULL,
    outcomes                  jsonb NOT NULL,
    result                    text NOT NULL,
    priority_group            text,
    priority_rank             int,
    score                     double precision,
    tie_breakers              jsonb NOT NULL,
    rooms_entitled            int,
    engine_version            text NOT NULL,
    reason                    text NOT NULL,
    determined_at             timestamptz NOT NULL,
    determined_by             text NOT NULL,
    -- What the decision says now: after an override or an upheld appeal.
    effective_result          text NOT NULL,
    effective_priority_group  text,
    effective_rooms           int,
    overridden_at             timestamptz,
    overridden_by             text,
    override_justification    text,
    version                   bigint NOT NULL,
    UNIQUE (household_id, sequence)
);
CREATE INDEX IF NOT EXISTS rm_eligibility_decisions_settlement
    ON rm_eligibility_decisions (origin_settlement_code);

-- The current (latest) decision of each household.
CREATE TABLE IF NOT EXISTS rm_eligibility_current (
    household_id   uuid PRIMARY KEY,
    decision_id    uuid NOT NULL,
    sequence       int NOT NULL
);

CREATE TABLE IF NOT EXISTS rm_eligibility_appeals (
    appeal_id      uuid PRIMARY KEY,
    decision_id    uuid NOT NULL,
    household_id   uuid NOT NULL,
    grounds        text NOT NULL,
    lodged_at      timestamptz NOT NULL,
    lodged_by      text NOT NULL,
    outcome        text,
    reasons        text,
    result         text,
    priority_group text,
    decided_at     timestamptz,
    decided_by     text
);
CREATE INDEX IF NOT EXISTS rm_eligibility_appeals_decision ON rm_eligibility_appeals (decision_id);

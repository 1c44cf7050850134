-- Read model: households (cases) and their members, built from the registry events.
CREATE TABLE IF NOT EXISTS rm_households (
    household_id            uuid PRIMARY KEY,
    head_person_id          uuid NOT NULL,
    origin_settlement_code  text NOT NULL,
    current_address         text NOT NULL,
    registered_at           timestamptz NOT NULL,
    registered_by           text NOT NULL,
    version                 bigint NOT NULL,
    updated_at              timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_households_origin ON rm_households (origin_settlement_code);
-- Added with HouseholdRegistered v2 (idempotent migration of existing read models).
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS contact_phone text;

CREATE TABLE IF NOT EXISTS rm_household_members (
    household_id   uuid NOT NULL REFERENCES rm_households (household_id) ON DELETE CASCADE,
    person_id      uuid NOT NULL,
    fin            text NOT NULL,
    relationship   text NOT NULL,
    position       int NOT NULL,
    PRIMARY KEY (household_id, person_id)
);

CREATE TABLE IF NOT EXISTS rm_persons (
    person_id     uuid PRIMARY KEY,
    fin           text NOT NULL UNIQUE,
    first_name    text NOT NULL,
    last_name     text NOT NULL,
    patronymic    text,
    birth_date    date NOT NULL,
    sex           text NOT NULL,
    household_id  uuid NOT NULL,
    version       bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_persons_household ON rm_persons (household_id);
-- Registry, complete (idempotent migrations of existing read models).
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS housing_condition text;
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS vulnerabilities text[] NOT NULL DEFAULT '{}';
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS origin_district_code text;
CREATE INDEX IF NOT EXISTS rm_households_district ON rm_households (origin_district_code);
CREATE INDEX IF NOT EXISTS rm_households_housing ON rm_households (housing_condition);
CREATE INDEX IF NOT EXISTS rm_households_vulnerabilities ON rm_households USING gin (vulnerabilities);

CREATE TABLE IF NOT EXISTS rm_household_vulnerabilities (
    household_id   uuid NOT NULL,
    vulnerability  text NOT NULL,
    person_id      uuid,
    note           text,
    recorded_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS rm_household_vulnerabilities_key
    ON rm_household_vulnerabilities (household_id, vulnerability, coalesce(person_id, '00000000-0000-0000-0000-000000000000'));

ALTER TABLE rm_persons ADD COLUMN IF NOT EXISTS idp_certificate_number text;
ALTER TABLE rm_persons ADD COLUMN IF NOT EXISTS origin_settlement_code text;
ALTER TABLE rm_persons ADD COLUMN IF NOT EXISTS registered_address text;
ALTER TABLE rm_persons ADD COLUMN IF NOT EXISTS idp_status text NOT NULL DEFAULT 'none';
ALTER TABLE rm_persons ADD COLUMN IF NOT EXISTS idp_status_since date;
ALTER TABLE rm_persons ADD COLUMN IF NOT EXISTS date_of_death date;
ALTER TABLE rm_persons ADD COLUMN IF NOT EXISTS search_name text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS rm_persons_search_name ON rm_persons (search_name text_pattern_ops);
CREATE INDEX IF NOT EXISTS rm_persons_origin ON rm_persons (origin_settlement_code);

CREATE TABLE IF NOT EXISTS rm_status_references (
    verification_code   text PRIMARY KEY,
    person_id           uuid NOT NULL,
    fin                 text NOT NULL,
    household_id        uuid NOT NULL,
    status              text NOT NULL,
    certificate_number  text,
    issued_at           timestamptz NOT NULL,
    issued_by           text NOT NULL
);

CREATE TABLE IF NOT EXISTS rm_household_splits (
    new_household_id   uuid PRIMARY KEY,
    from_household_id  uuid NOT NULL,
    person_ids         uuid[] NOT NULL,
    reason             text NOT NULL,
    split_at           timestamptz NOT NULL
);

-- Surveys.
CREATE TABLE IF NOT EXISTS rm_questionnaires (
    questionnaire_id  uuid PRIMARY KEY,
    code              text NOT NULL,
    version           int NOT NULL,
    title_az          text NOT NULL,
    title_en          text NOT NULL,
    questions         jsonb NOT NULL,
    published_at      timestamptz NOT NULL,
    published_by      text NOT NULL,
    UNIQUE (code, version)
);
CREATE TABLE IF NOT EXISTS rm_survey_responses (
    response_id         uuid PRIMARY KEY,
    household_id        uuid NOT NULL,
    questionnaire_code  text NOT NULL,
    questionnaire_version int NOT NULL,
    status              text NOT NULL,
    started_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    version             bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_survey_responses_household ON rm_survey_responses (household_id, started_at);
CREATE TABLE IF NOT EXISTS rm_survey_answers (
    response_id   uuid NOT NULL,
    question_id   text NOT NULL,
    value         jsonb NOT NULL,
    answered_at   timestamptz NOT NULL,
    PRIMARY KEY (response_id, question_id)
);

-- Name search: a "C"-collated index serves both the prefix match and the order, so a page of
-- results is read straight off the index even when a common prefix matches many thousands.
CREATE INDEX IF NOT EXISTS rm_persons_search_name_c ON rm_persons ((search_name COLLATE "C"), fin);

-- What the latest verification of the household's circumstances found (Resolution 65).
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS living_at_registered_address boolean;
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS private_housing_after_displacement boolean;
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS sham_marriage_or_divorce boolean;
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS circumstances_verified_on date;
ALTER TABLE rm_households ADD COLUMN IF NOT EXISTS circumstances_document text;

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

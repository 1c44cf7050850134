-- Read model: settlements, housing units by status, lottery rounds, relocation pipeline,
-- convoys, and returnee households' reintegration.
CREATE TABLE IF NOT EXISTS rm_settlements (
    settlement_code         text PRIMARY KEY,
    name                    text NOT NULL,
    clearance_agency        text,
    clearance_certified_on  date,
    clearance_reference     text,
    readiness               text[] NOT NULL DEFAULT '{}',
    opened_on               date,
    version                 bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS rm_settlement_ids (
    settlement_id    uuid PRIMARY KEY,
    settlement_code  text NOT NULL
);

CREATE TABLE IF NOT EXISTS rm_housing_units (
    unit_id          uuid PRIMARY KEY,
    settlement_code  text NOT NULL,
    reference        text NOT NULL,
    address          text NOT NULL,
    rooms            int NOT NULL,
    kind             text NOT NULL,
    floor            int,
    status           text NOT NULL,      -- available, offered, allocated, occupied
    household_id     uuid,               -- who holds the offer, the allocation or the keys
    updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_housing_units_settlement ON rm_housing_units (settlement_code, status);

-- What each household's relocation last said about a unit, with the relocation's version: a
-- unit's status and holder are derived from these rows (the latest hold not released), never
-- written by one case's event over another's, so the events of the settlement and of the
-- households may be applied in any order across partitions and leave the same unit. Added
-- after units were written by the last event applied: a read model from before it is brought
-- right by `reintegration projections rebuild housing` (the holds come from the log).
CREATE TABLE IF NOT EXISTS rm_unit_holds (
    unit_id       uuid NOT NULL,
    household_id  uuid NOT NULL,
    state         text NOT NULL,      -- offered, allocated, occupied, released
    version       bigint NOT NULL,    -- the household's relocation's, at its last change here
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (unit_id, household_id)
);

CREATE TABLE IF NOT EXISTS rm_allocation_rounds (
    round_id           uuid PRIMARY KEY,
    settlement_code    text NOT NULL,
    round_number       int NOT NULL,
    seed_hash          text NOT NULL,
    algorithm_version  text NOT NULL,
    entrants           jsonb NOT NULL,
    units              jsonb NOT NULL,
    rule_set_code      text NOT NULL,
    rule_set_version   int NOT NULL,
    offer_deadline_days int NOT NULL,
    announced_at       timestamptz NOT NULL,
    announced_by       text NOT NULL,
    seed               text,
    assignments        jsonb,
    reserve            jsonb,
    witnesses          text,
    drawn_at           timestamptz,
    version            bigint NOT NULL
);
ALTER TABLE rm_allocation_rounds ADD COLUMN IF NOT EXISTS participants jsonb;
ALTER TABLE rm_allocation_rounds ADD COLUMN IF NOT EXISTS public_randomness jsonb;
ALTER TABLE rm_allocation_rounds ADD COLUMN IF NOT EXISTS voided_at timestamptz;
ALTER TABLE rm_allocation_rounds ADD COLUMN IF NOT EXISTS withheld_by text[];
ALTER TABLE rm_allocation_rounds ADD COLUMN IF NOT EXISTS void_reason text;

CREATE TABLE IF NOT EXISTS rm_relocations (
    household_id      uuid PRIMARY KEY,
    settlement_code   text NOT NULL,
    stage             text NOT NULL,
    consent           boolean NOT NULL DEFAULT false,
    unit_id           uuid,
    address           text,
    offer_deadline    date,
    convoy_id         uuid,
    departs_on        date,
    arrived_on        date,
    utilities         text[] NOT NULL DEFAULT '{}',
    completed_on      date,
    updated_at        timestamptz NOT NULL,
    version           bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_relocations_settlement ON rm_relocations (settlement_code, stage);

CREATE TABLE IF NOT EXISTS rm_convoys (
    convoy_id        uuid PRIMARY KEY,
    settlement_code  text NOT NULL,
    departs_on       date NOT NULL,
    vehicles         int NOT NULL,
    household_ids    uuid[] NOT NULL,
    scheduled_by     text NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_convoys_settlement ON rm_convoys (settlement_code, departs_on, convoy_id);

CREATE TABLE IF NOT EXISTS rm_reintegration (
    household_id             uuid PRIMARY KEY,
    settlement_code          text NOT NULL,
    persons_seeking_work     int NOT NULL DEFAULT 0,
    employed                 int NOT NULL DEFAULT 0,
    services                 jsonb NOT NULL DEFAULT '[]',
    allowance_azn            int,
    allowance_terminates_on  date,
    assessments              jsonb NOT NULL DEFAULT '{}',
    version                  bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_reintegration_settlement ON rm_reintegration (settlement_code, household_id);

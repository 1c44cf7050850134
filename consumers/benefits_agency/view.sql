-- The benefits agency's own database: who is registered as displaced, in which household.
CREATE SCHEMA IF NOT EXISTS benefits_agency;
CREATE TABLE IF NOT EXISTS benefits_agency.idp_households (
    household_id            uuid PRIMARY KEY,
    origin_settlement_code  text NOT NULL,
    head_fin                text NOT NULL,
    member_count            int NOT NULL,
    registered_at           timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS benefits_agency.idp_persons (
    fin             text PRIMARY KEY,
    person_id       uuid NOT NULL,
    full_name       text NOT NULL,
    birth_date      date NOT NULL,
    household_id    uuid NOT NULL,
    registered_at   timestamptz NOT NULL,
    last_event_id   uuid NOT NULL
);

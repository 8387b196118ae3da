-- The audit trail's store (issue 19). One row per record as the emitter
-- signed it: `raw` is the exact line (what the signature and the next
-- record's `prev` commit to); the other columns are its fields, indexed
-- for queries. A record the collector cannot verify goes to
-- audit_quarantine with the reason, never dropped.

CREATE TABLE audit_records (
    id          bigserial   PRIMARY KEY,
    stream      text        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq >= 0),
    prev        text        NOT NULL,
    hash        text        NOT NULL,
    kind        text        NOT NULL,
    time        timestamptz NOT NULL,
    body        jsonb       NOT NULL,
    sig         text        NOT NULL,
    raw         text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, seq)
);
CREATE INDEX audit_records_time ON audit_records (time);

-- The key of each stream, learnt from its signed seq-0 attestation record
-- (whose signature it verifies). `audit verify` proves it attested through
-- a verifier decision for the same SPKI digest; this table is only what
-- the collector checks later records of the stream against.
CREATE TABLE audit_streams (
    stream     text        PRIMARY KEY,
    spki       text        NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_quarantine (
    id          bigserial   PRIMARY KEY,
    stream      text,
    seq         bigint,
    reason      text        NOT NULL,
    raw         text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

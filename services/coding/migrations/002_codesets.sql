-- Code sets, versioned by effective dates so a later release can sit beside this one.

CREATE TABLE IF NOT EXISTS {schema}.code_set_version (
    system         text NOT NULL CHECK (system IN ('icd10cm', 'cpt', 'hcpcs')),
    version        text NOT NULL,
    effective_from date NOT NULL,
    effective_to   date,
    source         text NOT NULL,
    code_count     int NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, version)
);

CREATE TABLE IF NOT EXISTS {schema}.icd10cm_code (
    version         text NOT NULL,
    code            text NOT NULL,          -- without the dot
    description     text NOT NULL,
    billable        boolean NOT NULL,       -- a leaf: only these go on claims
    parent          text,
    inclusion_terms text[] NOT NULL DEFAULT '{}',
    excludes1       text[] NOT NULL DEFAULT '{}',
    excludes2       text[] NOT NULL DEFAULT '{}',
    code_first      text[] NOT NULL DEFAULT '{}',
    use_additional  text[] NOT NULL DEFAULT '{}',
    code_also       text[] NOT NULL DEFAULT '{}',
    seventh_chars   jsonb,
    search_text     text NOT NULL,
    tsv             tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, search_text)) STORED,
    PRIMARY KEY (version, code)
);
CREATE INDEX IF NOT EXISTS icd10cm_code_tsv ON {schema}.icd10cm_code USING gin (tsv);

-- CPT: code numbers with the project's own short labels; `descriptor` only from a licensed file.
CREATE TABLE IF NOT EXISTS {schema}.cpt_code (
    version     text NOT NULL,
    code        text NOT NULL,
    short_label text NOT NULL,
    category    text,
    descriptor  text,
    PRIMARY KEY (version, code)
);

CREATE TABLE IF NOT EXISTS {schema}.hcpcs_code (
    version           text NOT NULL,
    code              text NOT NULL,
    short_description text NOT NULL,
    long_description  text NOT NULL,
    kind              text NOT NULL,
    PRIMARY KEY (version, code)
);

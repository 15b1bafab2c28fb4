-- examples/passei-direto/warehouse.sql
--
-- The warehouse of the brief (shared/brief): every Kafka topic lands as-is in
-- `raw`; SQL cleans it into `staging`; SQL builds the data marts from staging.
--
--   Kafka topics ──Kafka Connect──▶ raw.leads, raw.contracts, raw.events
--        │                              │ (duplicates, messy spellings, text dates)
--        │                              ▼  section 2: type, normalise, de-duplicate
--        │                          staging.leads, staging.contracts
--        │                              ▼  section 3: aggregate
--        │                          funnel_data_mart.funnel
--        │                          origination_mart.originations (+ view monthly_summary)
--        └──Kafka Streams──Kafka Connect──▶ sales_mart.sales_per_region (section 4)
--   martgate's audit sink ──▶ governance.audit_events (created by martgate)
--
-- Section 1 stands in for Kafka Connect: it lands synthetic but realistic data
-- (6,000 leads over January-June 2026, ~1,000 contracts, ~6,000 page views),
-- made deterministic with generate_series and md5, so every load gives the
-- same rows. The names, e-mail addresses (on the reserved .example domain)
-- and phone numbers are invented. Sections 2-4 are the pipeline itself: the
-- SQL that builds each layer from the previous one.
--
-- Load it (PostgreSQL 12 or later) as the warehouse role that martgate logs
-- in with, which then owns what it creates; it needs CREATE on the database.
-- It can be loaded again: it drops and rebuilds every schema but governance.
--
--   psql -v ON_ERROR_STOP=1 -d passei -f examples/passei-direto/warehouse.sql

BEGIN;
SET LOCAL client_min_messages = warning;

DROP SCHEMA IF EXISTS raw, staging, funnel_data_mart, origination_mart, sales_mart CASCADE;
CREATE SCHEMA raw;
CREATE SCHEMA staging;
CREATE SCHEMA funnel_data_mart;
CREATE SCHEMA origination_mart;
CREATE SCHEMA sales_mart;
CREATE SCHEMA IF NOT EXISTS governance;   -- martgate's audit sink creates governance.audit_events here

COMMENT ON SCHEMA raw IS 'every source as landed from Kafka, untouched (restricted: contact data)';
COMMENT ON SCHEMA staging IS 'typed, normalised, de-duplicated sources; contact data pseudonymised';
COMMENT ON SCHEMA funnel_data_mart IS 'lead -> contract funnel, built from staging';
COMMENT ON SCHEMA origination_mart IS 'originations (signed contracts) per month, region and plan';
COMMENT ON SCHEMA sales_mart IS 'sales per region, streamed (Kafka Streams -> Kafka Connect)';
COMMENT ON SCHEMA governance IS 'martgate audit trail (governance.audit_events)';

-- ============================================================================
-- 1. Landing (what Kafka Connect writes). Synthetic data, deterministic.
-- ============================================================================

-- h(key): a stable pseudo-random integer in [0, 2^28) from md5(key).
CREATE FUNCTION pg_temp.h(k text) RETURNS integer LANGUAGE sql IMMUTABLE STRICT
  AS $$ SELECT ('x' || substr(md5(k), 1, 7))::bit(28)::integer $$;
-- pick(key, array): one element, chosen by h(key).
CREATE FUNCTION pg_temp.pick(k text, a text[]) RETURNS text LANGUAGE sql IMMUTABLE STRICT
  AS $$ SELECT a[1 + pg_temp.h(k) % cardinality(a)] $$;
-- ts(key, t): the timestamp as one of the three shapes the producers send.
CREATE FUNCTION pg_temp.ts_text(k text, t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE STRICT
  AS $$ SELECT CASE pg_temp.h(k) % 3
                 WHEN 0 THEN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                 WHEN 1 THEN to_char(t AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD HH24:MI:SS') || '-03'
                 ELSE to_char(t AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS.MS') || '-03:00'
               END $$;

-- The truth the producers describe (temporary: gone when this load ends).
CREATE TEMP TABLE gen_lead ON COMMIT DROP AS
WITH base AS (
  SELECT i,
         timestamptz '2026-01-01 00:00:00-03'
           + (floor(15634800 * power((i - 1) / 6000.0, 0.85)) + pg_temp.h('t' || i) % 3600) * interval '1 second'
           AS created_at,                                   -- leads grow month after month
         pg_temp.h('c' || i) % 100 AS c, pg_temp.h('r' || i) % 100 AS r, pg_temp.h('u' || i) % 100 AS u
  FROM generate_series(1, 6000) AS i
)
SELECT i AS id, created_at,
       CASE WHEN c < 35 THEN 'organic' WHEN c < 60 THEN 'paid_search' WHEN c < 78 THEN 'social'
            WHEN c < 90 THEN 'referral' ELSE 'email' END AS channel,
       CASE WHEN u < 2 THEN 'unknown'
            WHEN r < 42 THEN 'southeast' WHEN r < 69 THEN 'northeast' WHEN r < 84 THEN 'south'
            WHEN r < 92 THEN 'midwest' ELSE 'north' END AS region,
       pg_temp.pick('f' || i, '{Ana,Bruno,Camila,Diego,Eduarda,Felipe,Gabriela,Heitor,Isabela,João,Júlia,Larissa,Lucas,Luana,Mariana,Mateus,Natália,Otávio,Pedro,Rafaela,Rodrigo,Sofia,Thiago,Valentina,Vinícius,Yasmin,Caio,Beatriz,Gustavo,Letícia}') AS first_name,
       pg_temp.pick('l' || i, '{Silva,Santos,Oliveira,Souza,Rodrigues,Ferreira,Alves,Pereira,Lima,Gomes,Costa,Ribeiro,Martins,Carvalho,Almeida,Lopes,Soares,Fernandes,Vieira,Barbosa,Rocha,Dias,Nascimento,Araújo}') AS last_name
FROM base;

CREATE TEMP TABLE gen_contract ON COMMIT DROP AS
WITH conv AS (
  SELECT l.*,
         l.created_at + (7200 + floor(40 * 86400 * power((pg_temp.h('s' || l.id) % 1000) / 1000.0, 2))) * interval '1 second'
           AS signed_at,
         pg_temp.h('pl' || l.id) % 100 AS p, pg_temp.h('cp' || l.id) % 100 < 15 AS coupon
  FROM gen_lead l
  WHERE pg_temp.h('k' || l.id) % 1000 < CASE l.channel WHEN 'organic' THEN 180 WHEN 'paid_search' THEN 140
                                         WHEN 'social' THEN 90 WHEN 'referral' THEN 310 ELSE 220 END
), priced AS (
  SELECT conv.*,
         CASE WHEN p < 45 THEN 'monthly' WHEN p < 65 THEN 'quarterly' WHEN p < 80 THEN 'semiannual' ELSE 'annual' END AS plan
  FROM conv
  WHERE signed_at < timestamptz '2026-07-01 00:00:00-03'   -- the snapshot: contracts signed by the end of June
)
SELECT 'PD-' || lpad(row_number() OVER (ORDER BY signed_at, id)::text, 6, '0') AS contract_id,
       id AS lead_id, signed_at, plan, region, coupon,
       round((CASE plan WHEN 'monthly' THEN 29.90 WHEN 'quarterly' THEN 79.90 WHEN 'semiannual' THEN 149.90 ELSE 239.90 END)
             * CASE WHEN coupon THEN 0.8 ELSE 1 END, 2) AS amount
FROM priced;

-- raw.leads: topic crm.leads as landed. Spellings vary by producer, dates come
-- in three shapes, some messages are redelivered (at-least-once) and some
-- leads are sent again later with their region filled in; QA sends test leads.
CREATE TABLE raw.leads (
  id         bigint,
  created_at text,
  name       text,
  email      text,
  phone      text,
  channel    text,
  region     text,
  payload    jsonb
);
COMMENT ON TABLE raw.leads IS 'topic crm.leads as landed: duplicates, test leads, free-text spellings; contact data in clear';

WITH l AS (
  SELECT g.*,
         translate(lower(first_name || '.' || last_name), 'áàâãéêíóôõúüç', 'aaaaeeiooouuc')
           || (pg_temp.h('n' || id) % 100)::text
           || '@' || pg_temp.pick('d' || id, '{gmail.example,hotmail.example,outlook.example,yahoo.example,uol.example,usp.example,unicamp.example}')
           AS email_clean,
         CASE region WHEN 'southeast' THEN pg_temp.pick('dd' || id, '{11,21,31,19,27}')
                     WHEN 'south' THEN pg_temp.pick('dd' || id, '{41,51,48}')
                     WHEN 'northeast' THEN pg_temp.pick('dd' || id, '{71,81,85,83}')
                     WHEN 'midwest' THEN pg_temp.pick('dd' || id, '{61,62,65}')
                     WHEN 'north' THEN pg_temp.pick('dd' || id, '{91,92,96}')
                     ELSE '11' END AS ddd,
         lpad((pg_temp.h('p' || id) % 100000000)::text, 8, '0') AS num,
         pg_temp.h('dup' || id) % 100 < 4 AS redelivered,
         pg_temp.h('upd' || id) % 100 < 3 AND region <> 'unknown' AS enriched_later
  FROM gen_lead g
), landed AS (
  SELECT l.*, v.version
  FROM l CROSS JOIN LATERAL (VALUES (1), (2)) AS v(version)
  WHERE v.version = 1 OR l.enriched_later
)
INSERT INTO raw.leads
SELECT id,
       pg_temp.ts_text('fmt' || id, created_at),
       CASE WHEN pg_temp.h('vn' || id) % 10 = 0 THEN upper(first_name || ' ' || last_name)
            WHEN pg_temp.h('vn' || id) % 10 = 1 THEN '  ' || first_name || '  ' || last_name || ' '
            ELSE first_name || ' ' || last_name END,
       CASE WHEN pg_temp.h('ve' || id) % 100 < 3 THEN NULL
            WHEN pg_temp.h('ve' || id) % 100 < 13 THEN initcap(email_clean)
            WHEN pg_temp.h('ve' || id) % 100 < 18 THEN ' ' || email_clean || ' '
            ELSE email_clean END,
       CASE WHEN pg_temp.h('vp' || id) % 100 < 5 THEN NULL
            ELSE CASE pg_temp.h('vf' || id) % 4
                   WHEN 0 THEN '+55 ' || ddd || ' 9' || substr(num, 1, 4) || '-' || substr(num, 5)
                   WHEN 1 THEN '(' || ddd || ') 9' || substr(num, 1, 4) || '-' || substr(num, 5)
                   WHEN 2 THEN ddd || '9' || num
                   ELSE '55' || ddd || '9' || num END END,
       CASE WHEN pg_temp.h('vc' || id) % 100 < 60 THEN channel
            ELSE pg_temp.pick('vc2' || id, CASE channel
                   WHEN 'organic' THEN '{Organic,ORGANIC," organic ",seo,SEO}'::text[]
                   WHEN 'paid_search' THEN '{"Paid Search",google-ads,cpc,PAID_SEARCH}'::text[]
                   WHEN 'social' THEN '{Social,instagram,facebook,tiktok}'::text[]
                   WHEN 'referral' THEN '{Referral,indicacao,indicação,member-get-member}'::text[]
                   ELSE '{E-mail,newsletter,EMAIL}'::text[] END) END,
       CASE WHEN region = 'unknown' THEN pg_temp.pick('vr' || id, '{NULL,"",n/a,-}')
            WHEN enriched_later AND version = 1 THEN NULL          -- the CRM filled it in later
            WHEN pg_temp.h('vr' || id) % 100 < 55 THEN region
            ELSE pg_temp.pick('vr2' || id, CASE region
                   WHEN 'southeast' THEN '{SE,Sudeste,"sudeste ",SOUTHEAST}'::text[]
                   WHEN 'northeast' THEN '{NE,Nordeste,nordeste}'::text[]
                   WHEN 'south' THEN '{S,Sul,SUL}'::text[]
                   WHEN 'midwest' THEN '{CO,Centro-Oeste,"centro oeste",Midwest}'::text[]
                   ELSE '{N,Norte,NORTE}'::text[] END) END,
       jsonb_build_object(
         'schema_version', 2, 'source', 'crm',
         'utm', jsonb_build_object(
                  'source', CASE channel WHEN 'paid_search' THEN 'google' WHEN 'social' THEN 'instagram'
                                         WHEN 'email' THEN 'newsletter' WHEN 'referral' THEN 'mgm' ELSE 'direct' END,
                  'campaign', pg_temp.pick('cmp' || id, '{enem-2026,vestibular-2026,volta-as-aulas,always-on,calculo-1}')),
         'device', pg_temp.pick('dv' || id, '{mobile,mobile,mobile,desktop,tablet}'),
         'consent_marketing', pg_temp.h('cm' || id) % 100 < 70,
         '_kafka', jsonb_build_object('topic', 'crm.leads', 'partition', id % 6,
                                      'offset', id * 2 + CASE WHEN version = 2 THEN 20000 ELSE 0 END))
FROM landed;

-- at-least-once delivery: some messages land twice, byte for byte
INSERT INTO raw.leads
SELECT r.* FROM raw.leads r
WHERE pg_temp.h('dup' || r.id) % 100 < 4 AND (r.payload #>> '{_kafka,offset}')::bigint < 20000;

-- QA's test leads in production
INSERT INTO raw.leads
SELECT 990000 + i,
       pg_temp.ts_text('qa' || i, timestamptz '2026-03-02 10:00:00-03' + i * interval '9 days'),
       'Teste QA ' || i, 'qa+' || i || '@passeidireto.example', '+55 11 90000-000' || (i % 10),
       'organic', 'SE',
       jsonb_build_object('schema_version', 2, 'source', 'qa', 'is_test', true,
                          '_kafka', jsonb_build_object('topic', 'crm.leads', 'partition', 0, 'offset', 30000 + i))
FROM generate_series(1, 12) AS i;

-- raw.contracts: topic billing.contracts as landed; amounts as text in the
-- shapes the billing front-ends send, plans in two languages, some regions
-- missing, some messages redelivered, QA's test contracts.
CREATE TABLE raw.contracts (
  id        text,
  lead_id   text,
  signed_at text,
  amount    text,
  plan      text,
  region    text
);
COMMENT ON TABLE raw.contracts IS 'topic billing.contracts as landed: text amounts, mixed spellings, duplicates';

INSERT INTO raw.contracts
SELECT contract_id,
       CASE WHEN pg_temp.h('cl' || contract_id) % 100 < 3 THEN ' ' || lead_id ELSE lead_id::text END,
       pg_temp.ts_text('cfmt' || contract_id, signed_at),
       CASE pg_temp.h('ca' || contract_id) % 4
         WHEN 0 THEN to_char(amount, 'FM99990.00')
         WHEN 1 THEN replace(to_char(amount, 'FM99990.00'), '.', ',')
         WHEN 2 THEN 'R$ ' || replace(to_char(amount, 'FM99990.00'), '.', ',')
         ELSE 'R$' || to_char(amount, 'FM99990.00') END,
       CASE WHEN pg_temp.h('cp' || contract_id) % 100 < 60 THEN plan
            ELSE pg_temp.pick('cp2' || contract_id, CASE plan
                   WHEN 'monthly' THEN '{Mensal,MONTHLY,"monthly ",mensal}'::text[]
                   WHEN 'quarterly' THEN '{Trimestral,QUARTERLY,trimestral}'::text[]
                   WHEN 'semiannual' THEN '{Semestral,semi-annual,SEMIANNUAL}'::text[]
                   ELSE '{Anual,ANNUAL,yearly,anual}'::text[] END) END,
       CASE WHEN region = 'unknown' OR pg_temp.h('cr' || contract_id) % 100 < 5 THEN NULL
            ELSE pg_temp.pick('cr2' || contract_id, CASE region
                   WHEN 'southeast' THEN '{southeast,SE,Sudeste}'::text[]
                   WHEN 'northeast' THEN '{northeast,NE,Nordeste}'::text[]
                   WHEN 'south' THEN '{south,S,Sul}'::text[]
                   WHEN 'midwest' THEN '{midwest,CO,Centro-Oeste}'::text[]
                   ELSE '{north,N,Norte}'::text[] END) END
FROM gen_contract;

INSERT INTO raw.contracts
SELECT c.* FROM raw.contracts c WHERE pg_temp.h('cdup' || c.id) % 100 < 5;

INSERT INTO raw.contracts   -- test contracts for QA's test leads
SELECT 'QA-' || i, (990000 + i)::text, '2026-03-20T12:00:00Z', '1,00', 'monthly', 'SE'
FROM generate_series(1, 3) AS i;

-- raw.events: the event topics, one row per message, payload as sent.
--   billing.contract_signed  one per contract (the input of the sales stream)
--   web.pageviews            the site's page views
CREATE TABLE raw.events (
  topic       text NOT NULL,
  received_at timestamptz NOT NULL,
  payload     jsonb NOT NULL
);
COMMENT ON TABLE raw.events IS 'event topics as landed (billing.contract_signed, web.pageviews): redeliveries and malformed messages included';

INSERT INTO raw.events
SELECT 'billing.contract_signed',
       signed_at + (pg_temp.h('ev' || contract_id) % 30) * interval '1 second',
       jsonb_build_object('contract_id', contract_id, 'lead_id', lead_id,
                          'signed_at', to_char(signed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                          'amount_cents', (amount * 100)::integer, 'currency', 'BRL', 'plan', plan,
                          'region_code', CASE region WHEN 'southeast' THEN 'SE' WHEN 'northeast' THEN 'NE'
                                                     WHEN 'south' THEN 'S' WHEN 'midwest' THEN 'CO'
                                                     WHEN 'north' THEN 'N' END)
FROM gen_contract;

INSERT INTO raw.events   -- redeliveries, minutes later
SELECT topic, received_at + (1 + pg_temp.h('evd' || (payload->>'contract_id')) % 9) * interval '1 minute', payload
FROM raw.events
WHERE topic = 'billing.contract_signed' AND pg_temp.h('evd' || (payload->>'contract_id')) % 100 < 5;

INSERT INTO raw.events   -- a producer bug: messages without a contract
SELECT 'billing.contract_signed', timestamptz '2026-04-14 03:00:00-03' + i * interval '1 minute',
       jsonb_build_object('error', 'schema mismatch', 'raw', 'c29tZSBieXRlcw==')
FROM generate_series(1, 5) AS i;

INSERT INTO raw.events
SELECT 'web.pageviews',
       timestamptz '2026-01-01 00:00:00-03' + (pg_temp.h('pv' || i) % 15634800) * interval '1 second',
       jsonb_build_object('session', substr(md5('session' || (i / 4)), 1, 16),
                          'path', pg_temp.pick('pp' || i, '{/,/materiais/calculo-1,/materiais/anatomia,/perguntas,/planos,/checkout,/enem}'),
                          'referrer', pg_temp.pick('pr' || i, '{google.example,instagram.example,direct,newsletter}'),
                          'device', pg_temp.pick('pd' || i, '{mobile,mobile,desktop}'))
FROM generate_series(1, 6000) AS i;

-- ============================================================================
-- 2. Staging: typed, normalised, de-duplicated, built by SQL from raw.
--    Contact data stays in raw: staging keeps the e-mail's domain and a
--    pseudonymous contact key, which is all the marts need.
-- ============================================================================

-- reference data: every spelling the producers use, lower-cased and trimmed
CREATE TABLE staging.channel_aliases (alias text PRIMARY KEY, channel text NOT NULL);
INSERT INTO staging.channel_aliases VALUES
  ('organic', 'organic'), ('seo', 'organic'),
  ('paid_search', 'paid_search'), ('paid search', 'paid_search'), ('google-ads', 'paid_search'), ('cpc', 'paid_search'),
  ('social', 'social'), ('instagram', 'social'), ('facebook', 'social'), ('tiktok', 'social'),
  ('referral', 'referral'), ('indicacao', 'referral'), ('indicação', 'referral'), ('member-get-member', 'referral'),
  ('email', 'email'), ('e-mail', 'email'), ('newsletter', 'email');

CREATE TABLE staging.region_aliases (alias text PRIMARY KEY, region text NOT NULL);
INSERT INTO staging.region_aliases VALUES
  ('southeast', 'southeast'), ('se', 'southeast'), ('sudeste', 'southeast'),
  ('northeast', 'northeast'), ('ne', 'northeast'), ('nordeste', 'northeast'),
  ('south', 'south'), ('s', 'south'), ('sul', 'south'),
  ('midwest', 'midwest'), ('co', 'midwest'), ('centro-oeste', 'midwest'), ('centro oeste', 'midwest'),
  ('north', 'north'), ('n', 'north'), ('norte', 'north');

CREATE TABLE staging.plan_aliases (alias text PRIMARY KEY, plan text NOT NULL);
INSERT INTO staging.plan_aliases VALUES
  ('monthly', 'monthly'), ('mensal', 'monthly'),
  ('quarterly', 'quarterly'), ('trimestral', 'quarterly'),
  ('semiannual', 'semiannual'), ('semi-annual', 'semiannual'), ('semestral', 'semiannual'),
  ('annual', 'annual'), ('anual', 'annual'), ('yearly', 'annual');

CREATE TABLE staging.leads (
  lead_id          bigint PRIMARY KEY,
  created_at       timestamptz NOT NULL,
  created_day      date NOT NULL,          -- business day, America/Sao_Paulo
  channel          text NOT NULL,          -- organic, paid_search, social, referral, email, other
  region           text NOT NULL,          -- southeast, northeast, south, midwest, north, unknown
  email_domain     text,
  contact_key      text,                   -- md5 of the normalised e-mail: joins, never shows it
  has_phone        boolean NOT NULL,
  utm_campaign     text,
  device           text,
  consent_marketing boolean,
  landed_copies    integer NOT NULL        -- how many raw messages made this row
);
COMMENT ON TABLE staging.leads IS 'one row per lead: latest message of crm.leads (by Kafka offset), typed and normalised; test leads dropped';

INSERT INTO staging.leads
SELECT l.id,
       l.created_at::timestamptz,
       (l.created_at::timestamptz AT TIME ZONE 'America/Sao_Paulo')::date,
       coalesce(ca.channel, 'other'),
       coalesce(ra.region, 'unknown'),
       nullif(split_part(lower(trim(l.email)), '@', 2), ''),
       md5(lower(trim(l.email))),
       l.phone IS NOT NULL AND l.phone <> '',
       l.payload #>> '{utm,campaign}',
       l.payload ->> 'device',
       (l.payload ->> 'consent_marketing')::boolean,
       l.copies
FROM (
  SELECT DISTINCT ON (r.id) r.*, count(*) OVER (PARTITION BY r.id) AS copies
  FROM raw.leads r
  WHERE r.id IS NOT NULL AND NOT coalesce((r.payload ->> 'is_test')::boolean, false)
  ORDER BY r.id, (r.payload #>> '{_kafka,offset}')::bigint DESC
) AS l
LEFT JOIN staging.channel_aliases ca ON ca.alias = lower(trim(l.channel))
LEFT JOIN staging.region_aliases ra ON ra.alias = lower(trim(l.region));

CREATE INDEX ON staging.leads (created_day);

CREATE TABLE staging.contracts (
  contract_id   text PRIMARY KEY,
  lead_id       bigint NOT NULL REFERENCES staging.leads,
  signed_at     timestamptz NOT NULL,
  signed_day    date NOT NULL,            -- business day, America/Sao_Paulo
  amount        numeric(10,2) NOT NULL,   -- BRL
  plan          text NOT NULL,            -- monthly, quarterly, semiannual, annual
  region        text NOT NULL,            -- the contract's, else the lead's
  landed_copies integer NOT NULL
);
COMMENT ON TABLE staging.contracts IS 'one row per contract of billing.contracts, typed; region falls back to the lead''s; contracts of unknown leads dropped';

INSERT INTO staging.contracts
SELECT c.id,
       l.lead_id,
       c.signed_at::timestamptz,
       (c.signed_at::timestamptz AT TIME ZONE 'America/Sao_Paulo')::date,
       -- 'R$ 1.234,50', '1234,50', 'R$239.90', '239.90' -> 1234.50, 239.90
       CASE WHEN c.digits LIKE '%,%' THEN replace(replace(c.digits, '.', ''), ',', '.') ELSE c.digits END::numeric(10,2),
       coalesce(pa.plan, 'unknown'),
       coalesce(ra.region, l.region),
       c.copies
FROM (
  SELECT DISTINCT ON (trim(r.id)) trim(r.id) AS id, trim(r.lead_id) AS lead_id, r.signed_at, r.plan, r.region,
         regexp_replace(r.amount, '[^0-9,.]', '', 'g') AS digits,
         count(*) OVER (PARTITION BY trim(r.id)) AS copies
  FROM raw.contracts r
  WHERE trim(r.lead_id) ~ '^[0-9]+$'
  ORDER BY trim(r.id)
) AS c
JOIN staging.leads l ON l.lead_id = c.lead_id::bigint
LEFT JOIN staging.plan_aliases pa ON pa.alias = lower(trim(c.plan))
LEFT JOIN staging.region_aliases ra ON ra.alias = lower(trim(c.region));

CREATE INDEX ON staging.contracts (lead_id);
CREATE INDEX ON staging.contracts (signed_day);

-- ============================================================================
-- 3. Data marts, built by SQL from staging.
-- ============================================================================

-- The brief's example: leads meet contracts in funnel_data_mart.
CREATE TABLE funnel_data_mart.funnel (
  day                  date NOT NULL,     -- the day the lead arrived (America/Sao_Paulo)
  channel              text NOT NULL,
  region               text NOT NULL,
  leads                integer NOT NULL,
  converted_leads      integer NOT NULL,  -- leads of that day that signed (by the snapshot)
  contracts            integer NOT NULL,
  revenue              numeric(12,2) NOT NULL,
  avg_days_to_contract numeric(6,1),
  PRIMARY KEY (day, channel, region)
);
COMMENT ON TABLE funnel_data_mart.funnel IS 'lead -> contract funnel per day, channel and region (lead cohorts), from staging.leads and staging.contracts';

INSERT INTO funnel_data_mart.funnel
SELECT l.created_day, l.channel, l.region,
       count(DISTINCT l.lead_id),
       count(DISTINCT c.lead_id),
       count(c.contract_id),
       coalesce(sum(c.amount), 0),
       round((avg(extract(epoch FROM c.signed_at - l.created_at)) / 86400)::numeric, 1)
FROM staging.leads l
LEFT JOIN staging.contracts c ON c.lead_id = l.lead_id
GROUP BY l.created_day, l.channel, l.region;

CREATE TABLE origination_mart.originations (
  month      date NOT NULL,                 -- first day of the month the contract was signed
  region     text NOT NULL,
  plan       text NOT NULL,
  contracts  integer NOT NULL,
  amount     numeric(12,2) NOT NULL,
  avg_ticket numeric(10,2) NOT NULL,
  discounted integer NOT NULL,              -- contracts signed with a coupon
  PRIMARY KEY (month, region, plan)
);
COMMENT ON TABLE origination_mart.originations IS 'signed contracts per month, region and plan, from staging.contracts';

INSERT INTO origination_mart.originations
SELECT date_trunc('month', c.signed_day::timestamp)::date, c.region, c.plan,
       count(*), sum(c.amount), round(avg(c.amount), 2),
       count(*) FILTER (WHERE c.amount NOT IN (29.90, 79.90, 149.90, 239.90))
FROM staging.contracts c
GROUP BY 1, 2, 3;

CREATE VIEW origination_mart.monthly_summary AS
SELECT month,
       sum(contracts)::integer AS contracts,
       sum(amount) AS amount,
       round(sum(amount) / sum(contracts), 2) AS avg_ticket,
       round(sum(contracts) FILTER (WHERE plan = 'annual')::numeric / sum(contracts), 3) AS annual_share,
       round(sum(amount) / lag(sum(amount)) OVER (ORDER BY month) - 1, 3) AS growth_vs_previous_month
FROM origination_mart.originations
GROUP BY month;
COMMENT ON VIEW origination_mart.monthly_summary IS 'originations per month: volume, ticket, plan mix, growth';

-- ============================================================================
-- 4. The streaming example: sales per region.
--    In production a Kafka Streams application reads billing.contract_signed,
--    drops redeliveries (a state store keyed by contract_id), counts each
--    contract in a one-day window of its region, and Kafka Connect upserts the
--    result here on (region, window_start) seconds after the event. This is
--    the same computation over the same events, in SQL, so the example stays
--    self-contained and its numbers agree with the batch path above.
-- ============================================================================

CREATE TABLE sales_mart.sales_per_region (
  region        text NOT NULL,
  window_start  timestamptz NOT NULL,      -- midnight, America/Sao_Paulo
  window_end    timestamptz NOT NULL,
  contracts     integer NOT NULL,
  amount        numeric(12,2) NOT NULL,    -- BRL
  last_event_at timestamptz NOT NULL,
  PRIMARY KEY (region, window_start)
);
COMMENT ON TABLE sales_mart.sales_per_region IS 'contracts and amount per region and day; written by the sales stream (Kafka Streams -> Kafka Connect upsert)';

INSERT INTO sales_mart.sales_per_region
SELECT coalesce(ra.region, 'unknown'),
       date_trunc('day', e.signed_at, 'America/Sao_Paulo'),
       date_trunc('day', e.signed_at, 'America/Sao_Paulo') + interval '1 day',
       count(*),
       sum(e.amount_cents) / 100.0,
       max(e.received_at)
FROM (
  SELECT DISTINCT ON (payload ->> 'contract_id')
         (payload ->> 'signed_at')::timestamptz AS signed_at,
         (payload ->> 'amount_cents')::integer AS amount_cents,
         payload ->> 'region_code' AS region_code,
         received_at
  FROM raw.events
  WHERE topic = 'billing.contract_signed' AND payload ? 'contract_id'
  ORDER BY payload ->> 'contract_id', received_at
) AS e
LEFT JOIN staging.region_aliases ra ON ra.alias = lower(e.region_code)
GROUP BY 1, 2, 3;

COMMIT;

ANALYZE raw.leads, raw.contracts, raw.events, staging.leads, staging.contracts,
        funnel_data_mart.funnel, origination_mart.originations, sales_mart.sales_per_region;

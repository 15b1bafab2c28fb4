// node-postgres (with pg-cursor and pg-copy-streams) running the same
// scenarios, printed as a deterministic transcript: one line
// "== node SCENARIO: TEXT" each. t_clients_node.sh runs it directly and
// through martgate and compares.
//
//   node fidelity.js HOST PORT DB USER PASSWORD CA SCHEMA
'use strict';
const fs = require('fs');
const { Client } = require('pg');
const Cursor = require('pg-cursor');
const copyStreams = require('pg-copy-streams');
const { pipeline } = require('stream/promises');
const { Readable, Writable } = require('stream');

const [host, port, database, user, password, ca, schema] = process.argv.slice(2);
const out = (scenario, value) => console.log(`== node ${scenario}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
const errText = (e) => `ERROR ${[e.code, e.message, e.detail, e.hint, e.position].map((x) => (x === undefined ? '' : x)).join(' | ')}`;

function connect() {
  const c = new Client({ host, port: Number(port), database, user, password,
                         ssl: { ca: fs.readFileSync(ca, 'utf8'), servername: 'localhost' } });
  return c.connect().then(() => c);
}

async function main() {
  const c = await connect();
  out('connect', (await c.query("SELECT current_database() AS d, current_setting('client_encoding') AS e")).rows);
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.query(`CREATE TABLE ${schema}.u (a int PRIMARY KEY)`);
  await c.query(`INSERT INTO ${schema}.u VALUES (1)`);
  await c.query(`CREATE TABLE ${schema}.bulk (a int, b text, c numeric)`);
  const types = await c.query(
    'SELECT $1::int AS i, $2::bigint AS b, $3::numeric AS n, $4::text AS t, $5::bytea AS y, $6::bool AS o, ' +
    "$7::date::text AS d, $8::timestamptz AS ts, $9::jsonb AS j, $10::int[] AS a, $11::text AS z, '2 days'::interval AS iv",
    [42, '1099511627776', '12345.678', 'olá, 世界', Buffer.from([0, 1, 255]), true, '2026-12-06',
     '2026-12-06T03:04:05Z', JSON.stringify({ k: 'v' }), [1, 2, null], null]);
  const row = types.rows[0];
  row.y = row.y.toString('hex');
  row.ts = row.ts.toISOString();
  out('types', [row, types.fields.map((f) => f.dataTypeID)]);
  let total = 0;
  for (let i = 0; i < 20; i++) {   // a named statement: parsed once, reused
    total += (await c.query({ name: 'fid_double', text: 'SELECT $1::int * 2 AS v', values: [i] })).rows[0].v;
  }
  out('prepared-reuse', total);
  await c.query('BEGIN');
  await c.query(`INSERT INTO ${schema}.u VALUES (2)`);
  await c.query('SAVEPOINT s1');
  try { await c.query(`INSERT INTO ${schema}.u VALUES (2)`); } catch (e) { out('savepoint-error', errText(e)); }
  await c.query('ROLLBACK TO SAVEPOINT s1');
  await c.query(`INSERT INTO ${schema}.u VALUES (3)`);
  await c.query('COMMIT');
  out('transaction', (await c.query(`SELECT a FROM ${schema}.u ORDER BY a`)).rows.map((r) => r.a));
  // pg-cursor: 10^6 rows in batches
  const cur = c.query(new Cursor('SELECT g FROM generate_series(1, 1000000) g'));
  let n = 0; let s = 0;
  for (;;) {
    const rows = await cur.read(20000);
    if (!rows.length) break;
    n += rows.length;
    for (const r of rows) s += r.g;
  }
  await cur.close();
  out('million-cursor', `${n} ${s}`);
  const all = await c.query('SELECT g FROM generate_series(1, 1000000) g');
  out('million', `${all.rows.length} ${all.rows.reduce((a, r) => a + r.g, 0)}`);
  // COPY both ways
  const lines = [];
  for (let i = 0; i < 5000; i++) lines.push(`${i}\tr${i}\t${i / 4}\n`);
  await pipeline(Readable.from(lines), c.query(copyStreams.from(`COPY ${schema}.bulk (a, b, c) FROM STDIN`)));
  out('copy-in', (await c.query(`SELECT count(*)::int AS n FROM ${schema}.bulk`)).rows[0].n);
  const chunks = [];
  await pipeline(c.query(copyStreams.to(`COPY (SELECT * FROM ${schema}.bulk ORDER BY a) TO STDOUT (FORMAT csv)`)),
    new Writable({ write(chunk, enc, cb) { chunks.push(chunk); cb(); } }));
  const text = Buffer.concat(chunks).toString();
  out('copy-out', `${text.length} bytes, ${text.trim().split('\n').pop()}`);
  // the bulk path: a multi-row INSERT with many parameters, and a pipelined series
  const values = []; const params = [];
  for (let i = 0; i < 300; i++) { values.push(`($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`); params.push(i, 'm', i); }
  await c.query(`INSERT INTO ${schema}.bulk VALUES ${values.join(', ')}`, params);
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => c.query('SELECT $1::int + 1 AS v', [i])));
  out('bulk', [(await c.query(`SELECT count(*)::int AS n FROM ${schema}.bulk`)).rows[0].n,
               many.reduce((a, r) => a + r.rows[0].v, 0)]);
  const errors = ['SELECT 1/0', `INSERT INTO ${schema}.u VALUES (1)`, 'SELECT * FROM nowhere_at_all', 'SELECT 1 +',
                  'SELECT * FROM (SELECT 1)'];
  for (let i = 0; i < errors.length; i++) {
    try { await c.query(errors[i]); out(`error-${i}`, 'no error'); } catch (e) { out(`error-${i}`, errText(e)); }
    try { await c.query({ text: errors[i], values: [] }); } catch (e) { out(`error-extended-${i}`, errText(e)); }
  }
  // cancellation: node-postgres has no cancel call of its own; statement_timeout
  // makes the server cancel, query_timeout the driver give up (and the session end)
  const t0 = Date.now();
  await c.query("SET statement_timeout = '500ms'");
  try { await c.query('SELECT pg_sleep(20)'); out('cancel', 'not cancelled'); } catch (e) { out('cancel', e.code); }
  out('cancel-time', Date.now() - t0 < 6000 ? 'fast' : `slow ${(Date.now() - t0) / 1000} s`);
  await c.query('RESET statement_timeout');
  out('after-cancel', (await c.query("SELECT 'alive' AS a")).rows[0].a);
  await c.query(`DROP SCHEMA ${schema} CASCADE`);
  await c.end();
  out('done', 'ok');
}

main().catch((e) => { console.error(e); out('died', `${e.name}: ${e.message}`); });

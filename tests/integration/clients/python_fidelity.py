"""The same scenarios through one Python driver, printed as a deterministic
transcript: one line "== DRIVER SCENARIO: TEXT" per scenario. Run once
against the warehouse and once through martgate; t_clients_python.sh compares
the two transcripts scenario by scenario and checks a few answers against
what they must be.

    python_fidelity.py DRIVER HOST PORT DB USER PASSWORD CA SCHEMA
DRIVER: asyncpg | psycopg | psycopg2. The scenarios use tables in SCHEMA,
which they create and drop.
"""
import datetime
import decimal
import json
import sys
import threading
import time
import uuid

driver, host, port, db, user, password, ca, schema = sys.argv[1:9]
port = int(port)

VALUES = [  # (SQL type, Python value)
    ("int", 42), ("bigint", 2 ** 40), ("numeric", decimal.Decimal("12345.678")),
    ("text", "olá, 世界"), ("bytea", b"\x00\x01\xff"), ("bool", True),
    ("date", datetime.date(2026, 12, 6)),
    ("timestamp", datetime.datetime(2026, 12, 6, 3, 4, 5, 678000)),
    ("timestamptz", datetime.datetime(2026, 12, 6, 3, 4, 5, tzinfo=datetime.timezone.utc)),
    ("interval", datetime.timedelta(days=2, seconds=5)),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("int[]", [1, 2, None]), ("text", None),
]


def out(scenario, value):
    print("== %s %s: %s" % (driver, scenario, value), flush=True)


def err_text(e):
    """An error's fields, as the driver exposes them."""
    if driver == "asyncpg":
        f = [getattr(e, "sqlstate", None), getattr(e, "message", None), getattr(e, "detail", None),
             getattr(e, "hint", None), getattr(e, "position", None)]
    elif driver == "psycopg":
        d = e.diag
        f = [e.sqlstate, d.message_primary, d.message_detail, d.message_hint, d.statement_position]
    else:
        d = e.diag
        f = [e.pgcode, d.message_primary, d.message_detail, d.message_hint, d.statement_position]
    return "ERROR " + " | ".join("" if x is None else str(x) for x in f)


ERRORS = [
    "SELECT 1/0",
    "INSERT INTO {s}.u VALUES (1)",          # unique violation, with DETAIL
    "SELECT * FROM nowhere_at_all",          # undefined table, with position
    "SELECT 1 +",                            # syntax error, with position
    "SELECT * FROM (SELECT 1)",              # a parser error with a HINT
]


# ---------------------------------------------------------------- asyncpg --
def run_asyncpg():
    import asyncio
    import ssl
    import asyncpg

    async def main():
        ctx = ssl.create_default_context(cafile=ca)
        c = await asyncpg.connect(host=host, port=port, database=db, user=user, password=password, ssl=ctx)
        out("connect", "%s %s" % (await c.fetchval("SHOW client_encoding"), await c.fetchval("SELECT current_database()")))
        await c.execute("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s; CREATE TABLE %s.u (a int PRIMARY KEY);"
                        "INSERT INTO %s.u VALUES (1); CREATE TABLE %s.bulk (a int, b text, c numeric)"
                        % ((schema,) * 5))
        types = []
        for t, v in VALUES:
            r = await c.fetchrow("SELECT $1::%s AS v, pg_typeof($1::%s)::text AS t" % (t, t), v)
            types.append("%s=%r" % (r["t"], r["v"]))
        out("types", "; ".join(types))
        out("json", await c.fetchval("SELECT $1::jsonb ->> 'k'", json.dumps({"k": "v"})))
        # the statement cache: the same query many times (prepared once, reused)
        total = 0
        for i in range(120):
            total += await c.fetchval("SELECT $1::int * 2", i)
        out("prepared-reuse", total)
        stmt = await c.prepare("SELECT a FROM %s.u WHERE a = $1" % schema)
        out("prepared-explicit", [await stmt.fetchval(1) for _ in range(10)])
        async with c.transaction():
            await c.execute("INSERT INTO %s.u VALUES (2)" % schema)
            try:
                async with c.transaction():   # a savepoint
                    await c.execute("INSERT INTO %s.u VALUES (2)" % schema)
            except Exception as e:
                out("savepoint-error", err_text(e))
            await c.execute("INSERT INTO %s.u VALUES (3)" % schema)
        out("transaction", [r["a"] for r in await c.fetch("SELECT a FROM %s.u ORDER BY a" % schema)])
        async with c.transaction():
            cur = await c.cursor("SELECT g FROM generate_series(1, 1000) g")
            first = await cur.fetch(3)
            await cur.forward(500)
            out("cursor", [r["g"] for r in first] + [(await cur.fetchrow())["g"]])
        n = await c.copy_records_to_table("bulk", schema_name=schema,
                                          records=[(i, "r%d" % i, decimal.Decimal(i) / 4) for i in range(5000)])
        out("copy-in", n)
        import io
        buf = io.BytesIO()
        await c.copy_from_query("SELECT * FROM %s.bulk ORDER BY a" % schema, output=buf, format="csv")
        out("copy-out", "%d bytes, %s" % (len(buf.getvalue()), buf.getvalue().splitlines()[-1].decode()))
        await c.executemany("INSERT INTO %s.bulk VALUES ($1, $2, $3)" % schema, [(i, "m", i) for i in range(300)])
        out("executemany", await c.fetchval("SELECT count(*) FROM %s.bulk" % schema))
        r = await c.fetchrow("SELECT count(*) AS n, sum(g) AS s FROM generate_series(1, 1000000) g")
        rows = await c.fetch("SELECT g FROM generate_series(1, 1000000) g")
        out("million", "%d %d %d %d" % (r["n"], r["s"], len(rows), sum(x["g"] for x in rows)))
        for i, sql in enumerate(ERRORS):
            try:
                await c.execute(sql.format(s=schema))
                out("error-%d" % i, "no error")
            except asyncpg.PostgresError as e:
                out("error-%d" % i, err_text(e))
        t0 = time.time()
        try:
            await c.execute("SELECT pg_sleep(20)", timeout=1)
            out("cancel", "not cancelled")
        except asyncio.TimeoutError:
            out("cancel", "timeout")
        out("cancel-time", "fast" if time.time() - t0 < 6 else "slow %.1f s" % (time.time() - t0))
        out("after-cancel", await c.fetchval("SELECT 'alive'"))
        # a pool's release resets the connection (pg_advisory_unlock_all, CLOSE
        # ALL, UNLISTEN *, RESET ALL): a failed reset would close it
        pool = await asyncpg.create_pool(host=host, port=port, database=db, user=user, password=password,
                                         ssl=ctx, min_size=1, max_size=1)
        async with pool.acquire() as pc:
            pid = await pc.fetchval("SELECT pg_backend_pid()")
        async with pool.acquire() as pc:
            again = await pc.fetchval("SELECT pg_backend_pid()")
        await pool.close()
        out("pool-reset", "the same connection again" if pid == again else "a new connection")
        await c.execute("DROP SCHEMA %s CASCADE" % schema)
        await c.close()

    asyncio.run(main())


# ---------------------------------------------------------- psycopg (3) --
def run_psycopg():
    import psycopg

    c = psycopg.connect(host=host, port=port, dbname=db, user=user, password=password, sslmode="verify-full",
                        sslrootcert=ca, autocommit=True)
    out("connect", "%s %s" % (c.execute("SHOW client_encoding").fetchone()[0],
                              c.execute("SELECT current_database()").fetchone()[0]))
    c.execute("DROP SCHEMA IF EXISTS %s CASCADE" % schema)
    c.execute("CREATE SCHEMA %s" % schema)
    c.execute("CREATE TABLE %s.u (a int PRIMARY KEY)" % schema)
    c.execute("INSERT INTO %s.u VALUES (1)" % schema)
    c.execute("CREATE TABLE %s.bulk (a int, b text, c numeric)" % schema)
    types = []
    for t, v in VALUES:
        r = c.execute("SELECT %%s::%s, pg_typeof(%%s::%s)::text" % (t, t), (v, v)).fetchone()
        types.append("%s=%r" % (r[1], r[0]))
    out("types", "; ".join(types))
    out("json", c.execute("SELECT %s::jsonb ->> 'k'", (json.dumps({"k": "v"}),)).fetchone()[0])
    total = 0
    for i in range(20):   # prepared server-side after prepare_threshold (5) runs
        total += c.execute("SELECT %s::int * 2", (i,)).fetchone()[0]
    out("prepared-reuse", total)
    out("prepared-explicit", [c.execute("SELECT a FROM %s.u WHERE a = %%s" % schema, (1,), prepare=True).fetchone()[0]
                              for _ in range(10)])
    with c.transaction():
        c.execute("INSERT INTO %s.u VALUES (2)" % schema)
        try:
            with c.transaction():
                c.execute("INSERT INTO %s.u VALUES (2)" % schema)
        except psycopg.Error as e:
            out("savepoint-error", err_text(e))
        c.execute("INSERT INTO %s.u VALUES (3)" % schema)
    out("transaction", [r[0] for r in c.execute("SELECT a FROM %s.u ORDER BY a" % schema)])
    with c.transaction():
        with c.cursor(name="fid_cur") as cur:
            cur.execute("SELECT g FROM generate_series(1, 1000) g")
            first = cur.fetchmany(3)
            cur.scroll(500)
            out("cursor", [r[0] for r in first] + [cur.fetchone()[0]])
    with c.cursor() as cur:
        with cur.copy("COPY %s.bulk (a, b, c) FROM STDIN" % schema) as cp:
            for i in range(5000):
                cp.write_row((i, "r%d" % i, decimal.Decimal(i) / 4))
        with cur.copy("COPY %s.bulk (a, b, c) FROM STDIN (FORMAT binary)" % schema) as cp:
            cp.set_types(["int4", "text", "numeric"])
            for i in range(100):
                cp.write_row((i, "b", decimal.Decimal(i)))
    out("copy-in", c.execute("SELECT count(*) FROM %s.bulk" % schema).fetchone()[0])
    data = b""
    with c.cursor().copy("COPY (SELECT * FROM %s.bulk ORDER BY a, b) TO STDOUT (FORMAT csv)" % schema) as cp:
        for block in cp:
            data += bytes(block)
    out("copy-out", "%d bytes, %s" % (len(data), data.splitlines()[-1].decode()))
    with c.cursor() as cur:
        cur.executemany("INSERT INTO %s.bulk VALUES (%%s, %%s, %%s)" % schema, [(i, "m", i) for i in range(300)])
    out("executemany", c.execute("SELECT count(*) FROM %s.bulk" % schema).fetchone()[0])
    # pipeline mode: many statements in flight, an error inside, then recovery
    with c.pipeline():
        curs = [c.execute("SELECT %s::int + 1", (i,)) for i in range(50)]
    out("pipeline", sum(cu.fetchone()[0] for cu in curs))
    try:
        with c.pipeline():
            c.execute("INSERT INTO %s.bulk VALUES (-1, 'p', 0)" % schema)
            c.execute("SELECT 1/0")
            c.execute("INSERT INTO %s.bulk VALUES (-2, 'p', 0)" % schema)
        out("pipeline-error", "no error")
    except psycopg.Error as e:
        out("pipeline-error", err_text(e))
    out("pipeline-after", c.execute("SELECT count(*) FROM %s.bulk WHERE a < 0" % schema).fetchone()[0])
    # executemany in a pipeline with a duplicate key: the requests after the
    # error are skipped up to the Sync, and the connection goes on
    try:
        with c.pipeline():
            with c.cursor() as cur:
                cur.executemany("INSERT INTO %s.u VALUES (%%s)" % schema, [(10,), (1,), (11,), (12,)])
        out("pipeline-executemany", "no error")
    except psycopg.Error as e:
        out("pipeline-executemany", err_text(e))
    out("pipeline-executemany-after", c.execute("SELECT array_agg(a ORDER BY a) FROM %s.u" % schema).fetchone()[0])
    r = c.execute("SELECT count(*), sum(g) FROM generate_series(1, 1000000) g").fetchone()
    rows = c.execute("SELECT g FROM generate_series(1, 1000000) g").fetchall()
    out("million", "%d %d %d %d" % (r[0], r[1], len(rows), sum(x[0] for x in rows)))
    for i, sql in enumerate(ERRORS):
        try:
            c.execute(sql.format(s=schema))
            out("error-%d" % i, "no error")
        except psycopg.Error as e:
            out("error-%d" % i, err_text(e))
    canceller = threading.Timer(0.5, c.cancel)  # joined before the connection is used again
    canceller.start()
    t0 = time.time()
    try:
        c.execute("SELECT pg_sleep(20)")
        out("cancel", "not cancelled")
    except psycopg.Error as e:
        out("cancel", e.sqlstate)
    out("cancel-time", "fast" if time.time() - t0 < 6 else "slow %.1f s" % (time.time() - t0))
    canceller.join()
    out("after-cancel", c.execute("SELECT 'alive'").fetchone()[0])
    c.execute("DROP SCHEMA %s CASCADE" % schema)
    c.close()


# --------------------------------------------------------------- psycopg2 --
def run_psycopg2():
    import io
    import psycopg2
    import psycopg2.extras

    c = psycopg2.connect(host=host, port=port, dbname=db, user=user, password=password, sslmode="verify-full",
                         sslrootcert=ca)
    c.autocommit = True
    cur = c.cursor()

    def one(sql, args=None):
        cur.execute(sql, args)
        return cur.fetchone()

    out("connect", "%s %s" % (one("SHOW client_encoding")[0], one("SELECT current_database()")[0]))
    cur.execute("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s; CREATE TABLE %s.u (a int PRIMARY KEY);"
                "INSERT INTO %s.u VALUES (1); CREATE TABLE %s.bulk (a int, b text, c numeric)" % ((schema,) * 5))
    types = []
    for t, v in VALUES:
        if isinstance(v, uuid.UUID):
            psycopg2.extras.register_uuid()
        r = one("SELECT %%s::%s, pg_typeof(%%s::%s)::text" % (t, t), (v, v))
        val = bytes(r[0]) if isinstance(r[0], memoryview) else r[0]
        types.append("%s=%r" % (r[1], val))
    out("types", "; ".join(types))
    out("json", one("SELECT %s::jsonb ->> 'k'", (json.dumps({"k": "v"}),))[0])
    cur.execute("PREPARE fid_p (int) AS SELECT $1 * 2")
    out("prepared-reuse", sum(one("EXECUTE fid_p (%s)", (i,))[0] for i in range(20)))
    cur.execute("DEALLOCATE fid_p")
    c.autocommit = False
    cur.execute("INSERT INTO %s.u VALUES (2)" % schema)
    cur.execute("SAVEPOINT s1")
    try:
        cur.execute("INSERT INTO %s.u VALUES (2)" % schema)
    except psycopg2.Error as e:
        out("savepoint-error", err_text(e))
        cur.execute("ROLLBACK TO SAVEPOINT s1")
    cur.execute("INSERT INTO %s.u VALUES (3)" % schema)
    c.commit()
    cur.execute("SELECT a FROM %s.u ORDER BY a" % schema)
    out("transaction", [r[0] for r in cur.fetchall()])
    c.commit()
    named = c.cursor(name="fid_named")
    named.itersize = 100
    named.execute("SELECT g FROM generate_series(1, 1000) g")
    got = [r[0] for r in named]
    named.close()
    c.commit()
    out("cursor", "%d %d" % (len(got), sum(got)))
    c.autocommit = True
    buf = io.StringIO("".join("%d\tr%d\t%s\n" % (i, i, decimal.Decimal(i) / 4) for i in range(5000)))
    cur.copy_expert("COPY %s.bulk (a, b, c) FROM STDIN" % schema, buf)
    out("copy-in", one("SELECT count(*) FROM %s.bulk" % schema)[0])
    o = io.StringIO()
    cur.copy_expert("COPY (SELECT * FROM %s.bulk ORDER BY a) TO STDOUT (FORMAT csv)" % schema, o)
    out("copy-out", "%d bytes, %s" % (len(o.getvalue()), o.getvalue().splitlines()[-1]))
    psycopg2.extras.execute_values(cur, "INSERT INTO %s.bulk VALUES %%s" % schema, [(i, "v", i) for i in range(300)])
    psycopg2.extras.execute_batch(cur, "INSERT INTO %s.bulk VALUES (%%s, %%s, %%s)" % schema,
                                  [(i, "b", i) for i in range(300)])
    out("executemany", one("SELECT count(*) FROM %s.bulk" % schema)[0])
    r = one("SELECT count(*), sum(g) FROM generate_series(1, 1000000) g")
    cur.execute("SELECT g FROM generate_series(1, 1000000) g")
    rows = cur.fetchall()
    out("million", "%d %d %d %d" % (r[0], r[1], len(rows), sum(x[0] for x in rows)))
    for i, sql in enumerate(ERRORS):
        try:
            cur.execute(sql.format(s=schema))
            out("error-%d" % i, "no error")
        except psycopg2.Error as e:
            out("error-%d" % i, err_text(e))
    canceller = threading.Timer(0.5, c.cancel)  # joined before the connection is used again
    canceller.start()
    t0 = time.time()
    try:
        cur.execute("SELECT pg_sleep(20)")
        out("cancel", "not cancelled")
    except psycopg2.Error as e:
        out("cancel", e.pgcode)
    out("cancel-time", "fast" if time.time() - t0 < 6 else "slow %.1f s" % (time.time() - t0))
    canceller.join()
    out("after-cancel", one("SELECT 'alive'")[0])
    cur.execute("DROP SCHEMA %s CASCADE" % schema)
    c.close()


try:
    {"asyncpg": run_asyncpg, "psycopg": run_psycopg, "psycopg2": run_psycopg2}[driver]()
    out("done", "ok")
except Exception as e:   # the shell test reports the scenarios that never printed
    import traceback
    traceback.print_exc()
    out("died", "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""))

// pgjdbc (the driver Metabase ships) against martgate: verify-full TLS,
// server-side prepared statements past prepareThreshold, batches, cursor-based
// fetch (fetch size with autocommit off: Execute with a row limit and
// PortalSuspended), transactions, cancel, errors with SQLSTATE, metadata.
//
// Configuration from the environment (tests/integration/t_jdbc.sh sets it):
//   JT_HOST JT_PORT JT_DB JT_USER JT_PASSWORD JT_CA JT_OTHER_CA JT_MARTGATE=1|0
// Prints one "ok N - name" or "not ok N - name | why" line per check.
import java.math.BigDecimal;
import java.sql.*;
import java.util.*;
import java.util.concurrent.*;
import org.postgresql.PGStatement;
import org.postgresql.util.PSQLException;
import org.postgresql.util.ServerErrorMessage;

public class JdbcTests {
    static final String HOST = env("JT_HOST", "localhost");
    static final String PORT = env("JT_PORT", "5432");
    static final String DB = env("JT_DB", "postgres");
    static final String USER = env("JT_USER", "postgres");
    static final String PASSWORD = env("JT_PASSWORD", "");
    static final String CA = env("JT_CA", "");
    static final String OTHER_CA = env("JT_OTHER_CA", "");
    static final boolean MARTGATE = env("JT_MARTGATE", "1").equals("1");
    static int n = 0, failed = 0;

    static String env(String k, String d) { String v = System.getenv(k); return v == null ? d : v; }

    static void ok(String name) { System.out.println("ok " + (++n) + " - " + name); }
    static void notOk(String name, String why) {
        failed++;
        System.out.println("not ok " + (++n) + " - " + name + " | " + why.replace('\n', ' '));
    }
    static void check(String name, boolean cond, Object why) { if (cond) ok(name); else notOk(name, String.valueOf(why)); }

    interface Body { void run() throws Exception; }
    // A check that passes unless it throws or reports otherwise.
    static void test(String name, Body b) {
        try { b.run(); }
        catch (Throwable e) { notOk(name, "threw " + describe(e)); }
    }
    static String describe(Throwable e) {
        String s = e.getClass().getSimpleName() + ": " + e.getMessage();
        if (e instanceof SQLException) s += " [SQLSTATE " + ((SQLException) e).getSQLState() + "]";
        return s;
    }

    static Properties props(String sslmode, String rootcert) {
        Properties p = new Properties();
        p.setProperty("user", USER);
        p.setProperty("password", PASSWORD);
        p.setProperty("sslmode", sslmode);
        if (rootcert != null && !rootcert.isEmpty()) p.setProperty("sslrootcert", rootcert);
        p.setProperty("connectTimeout", "10");
        p.setProperty("socketTimeout", "60");
        p.setProperty("ApplicationName", "jdbc-tests");
        return p;
    }
    static String url(String host) { return "jdbc:postgresql://" + host + ":" + PORT + "/" + DB; }
    static Connection connect() throws SQLException { return DriverManager.getConnection(url(HOST), props("verify-full", CA)); }
    static Connection connect(Properties extra) throws SQLException {
        Properties p = props("verify-full", CA);
        p.putAll(extra);
        return DriverManager.getConnection(url(HOST), p);
    }
    static String one(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) { r.next(); return r.getString(1); }
    }
    static SQLException expectError(Body b) {
        try { b.run(); } catch (SQLException e) { return e; } catch (Exception e) { throw new RuntimeException(e); }
        return null;
    }

    public static void main(String[] args) throws Exception {
        DriverManager.setLoginTimeout(15);

        // ---- TLS
        test("verify-full TLS to " + HOST, () -> {
            try (Connection c = connect()) { check("verify-full TLS to " + HOST, "1".equals(one(c, "select 1")), "wrong answer"); }
        });
        test("verify-full TLS to 127.0.0.1 (IP in the SAN)", () -> {
            try (Connection c = DriverManager.getConnection(url("127.0.0.1"), props("verify-full", CA))) {
                check("verify-full TLS to 127.0.0.1 (IP in the SAN)", "1".equals(one(c, "select 1")), "wrong answer");
            }
        });
        {
            SQLException e = expectError(() -> DriverManager.getConnection(url(HOST), props("verify-full", OTHER_CA)).close());
            check("verify-full against another CA fails", e != null, "connected anyway");
        }
        if (MARTGATE) {
            SQLException e = expectError(() -> DriverManager.getConnection(url(HOST), props("disable", null)).close());
            check("sslmode=disable refused with 28000", e != null && "28000".equals(e.getSQLState()),
                  e == null ? "connected" : describe(e));
        }
        {
            Properties p = props("verify-full", CA);
            p.setProperty("password", MARTGATE ? "eyJhbGciOiJIUzI1NiJ9.e30.bad" : "wrong-password");
            SQLException e = expectError(() -> DriverManager.getConnection(url(HOST), p).close());
            check("bad password refused with 28P01", e != null && "28P01".equals(e.getSQLState()), e == null ? "connected" : describe(e));
        }

        try (Connection c = connect()) {
            try (Statement s = c.createStatement()) {
                s.execute("drop table if exists jt_items; create table jt_items (id int primary key, name text, price numeric(10,2), " +
                          "raw bytea, tags text[], at timestamptz, u uuid, doc jsonb)");
            }

            // ---- server-side prepared statements past prepareThreshold (default 5)
            test("server-side prepared statement", () -> {
                try (PreparedStatement ps = c.prepareStatement("select ?::int * 2, ?::text || '!', ?::numeric")) {
                    boolean right = true;
                    String bad = "";
                    for (int i = 1; i <= 12; i++) {
                        ps.setInt(1, i); ps.setString(2, "v" + i); ps.setBigDecimal(3, new BigDecimal("1.5").multiply(BigDecimal.valueOf(i)));
                        try (ResultSet r = ps.executeQuery()) {
                            r.next();
                            if (r.getInt(1) != 2 * i || !r.getString(2).equals("v" + i + "!")
                                || r.getBigDecimal(3).compareTo(new BigDecimal("1.5").multiply(BigDecimal.valueOf(i))) != 0) {
                                right = false; bad = "execution " + i + ": " + r.getInt(1) + "," + r.getString(2);
                            }
                        }
                    }
                    check("prepared statement executed 12 times, right answers", right, bad);
                    check("statement became server-prepared after prepareThreshold",
                          ps.unwrap(PGStatement.class).isUseServerPrepare(), "isUseServerPrepare() is false");
                    String named = one(c, "select count(*) from pg_prepared_statements where name like 'S\\_%'");
                    check("the warehouse holds the named statement (pg_prepared_statements)", Integer.parseInt(named) >= 1, "count " + named);
                }
            });
            test("prepareThreshold=1 with binary transfer", () -> {
                Properties p = new Properties(); p.setProperty("prepareThreshold", "1");
                try (Connection c1 = connect(p); PreparedStatement ps = c1.prepareStatement(
                         "select ?::int8 + 1, now() - now() = interval '0', ?::timestamptz, ?::bytea")) {
                    Timestamp ts = Timestamp.valueOf("2024-05-06 07:08:09.123456");
                    boolean right = true;
                    for (int i = 0; i < 3; i++) {
                        ps.setLong(1, 41L + i); ps.setTimestamp(2, ts); ps.setBytes(3, new byte[]{0, 1, (byte) 255});
                        try (ResultSet r = ps.executeQuery()) {
                            r.next();
                            right &= r.getLong(1) == 42L + i && r.getBoolean(2) && r.getTimestamp(3).equals(ts)
                                     && Arrays.equals(r.getBytes(4), new byte[]{0, 1, (byte) 255});
                        }
                    }
                    check("prepareThreshold=1 with binary transfer: right answers", right, "wrong values");
                }
            });

            // ---- batches
            test("batch insert", () -> {
                c.setAutoCommit(true);
                try (PreparedStatement ps = c.prepareStatement(
                        "insert into jt_items (id, name, price, raw, tags, at, u, doc) values (?, ?, ?, ?, ?, ?, ?, ?::jsonb)")) {
                    for (int i = 1; i <= 500; i++) {
                        ps.setInt(1, i); ps.setString(2, "item " + i + (i % 50 == 0 ? " ünï ☃" : ""));
                        ps.setBigDecimal(3, BigDecimal.valueOf(i, 2));
                        ps.setBytes(4, new byte[]{(byte) i, 0});
                        ps.setArray(5, c.createArrayOf("text", new String[]{"t" + (i % 3), null}));
                        ps.setTimestamp(6, new Timestamp(1700000000000L + i * 1000L));
                        ps.setObject(7, UUID.nameUUIDFromBytes(("u" + i).getBytes()));
                        ps.setString(8, "{\"i\": " + i + "}");
                        ps.addBatch();
                    }
                    int[] counts = ps.executeBatch();
                    int sum = 0; for (int x : counts) sum += (x == Statement.SUCCESS_NO_INFO ? 1 : x);
                    check("executeBatch of 500 inserts reports 500 rows", counts.length == 500 && sum == 500, counts.length + " / " + sum);
                }
                check("the 500 rows are there", "500|125250".equals(one(c, "select count(*) || '|' || sum(id) from jt_items")),
                      one(c, "select count(*) || '|' || sum(id) from jt_items"));
                check("values round-trip (unicode, uuid, array, jsonb)",
                      "item 50 ünï ☃|{t2,NULL}|50".equals(one(c, "select name || '|' || tags::text || '|' || (doc->>'i') from jt_items where id = 50")),
                      one(c, "select name || '|' || tags::text || '|' || (doc->>'i') from jt_items where id = 50"));
            });
            test("batch with reWriteBatchedInserts", () -> {
                Properties p = new Properties(); p.setProperty("reWriteBatchedInserts", "true");
                try (Connection c1 = connect(p); Statement s = c1.createStatement()) {
                    s.execute("create temp table rb (a int, b text)");
                    try (PreparedStatement ps = c1.prepareStatement("insert into rb values (?, ?)")) {
                        for (int i = 0; i < 1000; i++) { ps.setInt(1, i); ps.setString(2, "b" + i); ps.addBatch(); }
                        ps.executeBatch();
                    }
                    check("reWriteBatchedInserts batch of 1000", "1000|499500".equals(one(c1, "select count(*) || '|' || sum(a) from rb")),
                          one(c1, "select count(*) || '|' || sum(a) from rb"));
                }
            });
            test("statement batch", () -> {
                try (Statement s = c.createStatement()) {
                    s.addBatch("create temp table sb (a int)");
                    s.addBatch("insert into sb values (1), (2)");
                    s.addBatch("update sb set a = a * 10");
                    int[] r = s.executeBatch();
                    check("Statement batch (DDL + DML) counts", Arrays.equals(r, new int[]{0, 2, 2}), Arrays.toString(r));
                }
            });
            test("batch with an error", () -> {
                try (PreparedStatement ps = c.prepareStatement("insert into jt_items (id, name) values (?, ?)")) {
                    ps.setInt(1, 9001); ps.setString(2, "new"); ps.addBatch();
                    ps.setInt(1, 1); ps.setString(2, "duplicate"); ps.addBatch();
                    SQLException e = expectError(ps::executeBatch);
                    SQLException cause = e == null ? null : (e.getNextException() != null ? e.getNextException() : e);
                    check("batch with a duplicate key fails with 23505", cause != null && "23505".equals(cause.getSQLState()),
                          e == null ? "no error" : describe(cause));
                }
            });

            // ---- fetch size with autocommit off: cursor-based fetch
            test("cursor-based fetch", () -> {
                c.setAutoCommit(false);
                try (Statement s = c.createStatement()) {
                    s.setFetchSize(100);
                    long count = 0, sum = 0; String cursors = "?";
                    try (ResultSet r = s.executeQuery("select g, md5(g::text) from generate_series(1, 10000) g")) {
                        while (r.next()) {
                            count++; sum += r.getLong(1);
                            if (count == 150) cursors = one(c, "select count(*) from pg_cursors");
                        }
                    }
                    check("fetch size 100, autocommit off: all 10000 rows in order", count == 10000 && sum == 50005000L, count + " rows, sum " + sum);
                    check("rows came from an open portal (pg_cursors while reading)", !cursors.equals("0") && !cursors.equals("?"), "pg_cursors count " + cursors);
                }
                c.commit();
                try (PreparedStatement ps = c.prepareStatement("select id, name from jt_items where id <= ? order by id")) {
                    ps.setFetchSize(7);
                    ps.setInt(1, 100);
                    int k = 0; boolean inOrder = true;
                    try (ResultSet r = ps.executeQuery()) { while (r.next()) { k++; inOrder &= r.getInt(1) == k; } }
                    check("prepared statement with fetch size 7: 100 rows in order", k == 100 && inOrder, k + " rows");
                }
                c.commit();
                c.setAutoCommit(true);
            });
            test("big result without cursor", () -> {
                try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select g from generate_series(1, 200000) g")) {
                    long k = 0; while (r.next()) k++;
                    check("200000-row result, autocommit on", k == 200000, k);
                }
            });

            // ---- transactions
            test("transactions", () -> {
                try (Connection other = connect(); Statement s = c.createStatement()) {
                    c.setAutoCommit(false);
                    s.executeUpdate("insert into jt_items (id, name) values (1001, 'tx')");
                    check("uncommitted row invisible to another session", "0".equals(one(other, "select count(*) from jt_items where id = 1001")), "visible");
                    c.commit();
                    check("committed row visible to another session", "1".equals(one(other, "select count(*) from jt_items where id = 1001")), "invisible");
                    s.executeUpdate("insert into jt_items (id, name) values (1002, 'rolled back')");
                    c.rollback();
                    check("rolled-back row gone", "0".equals(one(c, "select count(*) from jt_items where id = 1002")), "still there");
                    s.executeUpdate("insert into jt_items (id, name) values (1003, 'kept')");
                    Savepoint sp = c.setSavepoint();
                    s.executeUpdate("insert into jt_items (id, name) values (1004, 'undone')");
                    c.rollback(sp);
                    c.commit();
                    check("savepoint rollback keeps the earlier insert only",
                          "1003".equals(one(c, "select string_agg(id::text, ',') from jt_items where id in (1003, 1004)")), "wrong rows");
                    SQLException e = expectError(() -> s.executeQuery("select 1/0"));
                    check("error inside a transaction: 22012", e != null && "22012".equals(e.getSQLState()), e == null ? "none" : describe(e));
                    SQLException e2 = expectError(() -> s.executeQuery("select 1"));
                    check("next statement in the failed transaction: 25P02", e2 != null && "25P02".equals(e2.getSQLState()), e2 == null ? "none" : describe(e2));
                    c.rollback();
                    c.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
                    check("isolation level serializable", "serializable".equals(one(c, "show transaction_isolation")), one(c, "show transaction_isolation"));
                    c.rollback();
                    c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
                    c.setAutoCommit(true);
                }
            });

            // ---- cancel
            test("Statement.cancel()", () -> {
                try (Statement s = c.createStatement()) {
                    ExecutorService ex = Executors.newSingleThreadExecutor();
                    long[] cancelledAt = new long[1];
                    Future<?> f = ex.submit(() -> {
                        try { Thread.sleep(700); cancelledAt[0] = System.nanoTime(); s.cancel(); } catch (Exception e) { throw new RuntimeException(e); }
                    });
                    SQLException e = expectError(() -> s.executeQuery("select pg_sleep(30)"));
                    long after = (System.nanoTime() - cancelledAt[0]) / 1_000_000;
                    f.get(5, TimeUnit.SECONDS); ex.shutdown();
                    check("Statement.cancel() of pg_sleep(30): 57014", e != null && "57014".equals(e.getSQLState()), e == null ? "no error" : describe(e));
                    check("Statement.cancel() returned control within 1 s (" + after + " ms)", after <= 1000, after + " ms");
                    check("connection usable after cancel", "ok".equals(one(c, "select 'ok'")), "no");
                }
            });
            test("setQueryTimeout", () -> {
                try (Statement s = c.createStatement()) {
                    s.setQueryTimeout(1);
                    long t0 = System.nanoTime();
                    SQLException e = expectError(() -> s.executeQuery("select pg_sleep(30)"));
                    long ms = (System.nanoTime() - t0) / 1_000_000;
                    check("setQueryTimeout(1) stops pg_sleep(30) (" + ms + " ms)", e != null && "57014".equals(e.getSQLState()) && ms < 2500,
                          e == null ? "no error" : describe(e) + " after " + ms + " ms");
                }
            });

            // ---- errors with SQLSTATE and details
            test("errors", () -> {
                try (Statement s = c.createStatement()) {
                    SQLException e = expectError(() -> s.executeQuery("select id,\n name from no_such_table"));
                    ServerErrorMessage m = e instanceof PSQLException ? ((PSQLException) e).getServerErrorMessage() : null;
                    check("undefined table: 42P01 with position", e != null && "42P01".equals(e.getSQLState()) && m != null && m.getPosition() == 23,
                          e == null ? "none" : describe(e) + " position " + (m == null ? "?" : m.getPosition()));
                    e = expectError(() -> s.executeUpdate("insert into jt_items (id, name) values (1, 'dup')"));
                    m = e instanceof PSQLException ? ((PSQLException) e).getServerErrorMessage() : null;
                    check("unique violation: 23505 with detail and constraint", e != null && "23505".equals(e.getSQLState()) && m != null
                          && "jt_items_pkey".equals(m.getConstraint()) && m.getDetail() != null && m.getDetail().contains("(id)=(1)"),
                          e == null ? "none" : describe(e));
                    e = expectError(() -> s.executeQuery("select 'x'::int"));
                    check("invalid input: 22P02", e != null && "22P02".equals(e.getSQLState()), e == null ? "none" : describe(e));
                    e = expectError(() -> s.execute("do $$ begin raise exception 'custom' using errcode = 'P0099', hint = 'the hint'; end $$"));
                    m = e instanceof PSQLException ? ((PSQLException) e).getServerErrorMessage() : null;
                    check("custom errcode and hint", e != null && "P0099".equals(e.getSQLState()) && m != null && "the hint".equals(m.getHint()),
                          e == null ? "none" : describe(e));
                    try (PreparedStatement ps = c.prepareStatement("select 1 / ?::int")) {
                        ps.setInt(1, 0);
                        e = expectError(ps::executeQuery);
                        check("error from a prepared statement: 22012", e != null && "22012".equals(e.getSQLState()), e == null ? "none" : describe(e));
                    }
                    check("connection usable after errors", "fine".equals(one(c, "select 'fine'")), "no");
                }
            });

            // ---- warnings, multiple results, metadata, parameters
            test("misc", () -> {
                try (Statement s = c.createStatement()) {
                    s.execute("do $$ begin raise notice 'note %', 7; end $$");
                    SQLWarning w = s.getWarnings();
                    check("NOTICE arrives as an SQLWarning", w != null && w.getMessage().contains("note 7"), w);
                    boolean isRs = s.execute("select 1; select 2, 3; update jt_items set name = name where id < 0");
                    List<String> seen = new ArrayList<>();
                    while (true) {
                        if (isRs) { try (ResultSet r = s.getResultSet()) { r.next(); seen.add("rs" + r.getMetaData().getColumnCount()); } }
                        else if (s.getUpdateCount() == -1) break;
                        else seen.add("upd" + s.getUpdateCount());
                        isRs = s.getMoreResults();
                    }
                    check("several results from one execute", seen.equals(Arrays.asList("rs1", "rs2", "upd0")), seen);
                }
                DatabaseMetaData md = c.getMetaData();
                try (ResultSet r = md.getTables(null, "public", "jt_items", new String[]{"TABLE"})) {
                    check("DatabaseMetaData.getTables finds the table", r.next() && "jt_items".equals(r.getString("TABLE_NAME")), "not found");
                }
                int cols = 0;
                try (ResultSet r = md.getColumns(null, "public", "jt_items", null)) { while (r.next()) cols++; }
                check("DatabaseMetaData.getColumns: 8 columns", cols == 8, cols);
                check("server version reported", md.getDatabaseMajorVersion() == 15, md.getDatabaseProductVersion());
                check("ApplicationName reaches the warehouse", "jdbc-tests".equals(one(c, "show application_name")), one(c, "show application_name"));
                c.setSchema("pg_catalog");
                check("setSchema (search_path)", "pg_catalog".equals(c.getSchema()), c.getSchema());
                c.setSchema("public");
            });
        }

        System.out.println("# jdbc: " + (n - failed) + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}

// What Metabase's PostgreSQL driver does on a connection, done with pgjdbc (the
// driver Metabase ships) through martgate, once per persona of the reference
// policy (tests/unit/fixtures/policy/passei):
//
//  1. the connection properties Metabase builds (metabase/metabase:
//     src/metabase/driver/postgres.clj connection-details->spec and ssl-params,
//     src/metabase/app_db/spec.clj spec :postgres) and its connection checkout
//     (src/metabase/driver/sql_jdbc/execute.clj set-default-connection-options!,
//     c3p0 testConnectionOnCheckout in sql_jdbc/connection.clj);
//  2. a DatabaseMetaData sync (getSchemas, getTables, getColumns, getPrimaryKeys,
//     getImportedKeys, getExportedKeys);
//  3. the catalog queries of Metabase's PostgreSQL driver, as prepared
//     statements with the parameters Metabase binds: describe-database
//     (get-tables-sql), describe-fields, describe-fks, describe-indexes,
//     current-user-table-privileges, enum-types, db-default-timezone;
//  4. MBQL-style parameterised queries carrying the "-- Metabase::" remark,
//     native queries, cursor-based fetch, read-only mode, max rows;
//  5. connection impersonation (Metabase Pro's SET ROLE r; / SET ROLE NONE;).
//
// Each persona must see exactly the relations its datasets hold; the expected
// sets are written out below from the policy by hand, and every value is
// compared with what the warehouse itself answers (a direct connection as the
// service role), filtered the way the policy says.
//
// Environment (tests/integration/t_metabase.sh sets it): MB_HOST MB_PORT MB_DB
// MB_CA, MB_DIRECT_PORT MB_DIRECT_USER MB_DIRECT_PASSWORD (the warehouse),
// MB_TOKEN_<ANA|CARLA|OLGA|SAM|ZED|SVC> (a JWT per persona).
// Prints one "ok N - name" or "not ok N - name | why" line per check, and a
// last "# metabase: N passed, N failed" line.
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.*;
import java.time.LocalDate;
import java.util.*;
import java.util.stream.*;

public class MetabaseSync {
    static final String HOST = env("MB_HOST", "localhost");
    static final String PORT = env("MB_PORT", "5432");
    static final String DB = env("MB_DB", "postgres");
    static final String CA = env("MB_CA", "");
    static final String DIRECT_PORT = env("MB_DIRECT_PORT", "5432");
    static final String DIRECT_USER = env("MB_DIRECT_USER", "postgres");
    static final String DIRECT_PASSWORD = env("MB_DIRECT_PASSWORD", "");
    // config/mb-version-and-process-identifier: "Metabase v<version> [<process uuid>]"
    static final String APPLICATION_NAME = "Metabase v0.56.4 [" + UUID.randomUUID() + "]";
    static int n = 0, failed = 0;

    static String env(String k, String d) { String v = System.getenv(k); return v == null ? d : v; }
    static void ok(String name) { System.out.println("ok " + (++n) + " - " + name); }
    static void notOk(String name, String why) {
        failed++;
        String w = why.replace('\n', ' ');
        if (w.length() > 1500) w = w.substring(0, 1500) + "...";
        System.out.println("not ok " + (++n) + " - " + name + " | " + w);
    }
    static boolean check(String name, boolean cond, Object why) {
        if (cond) ok(name); else notOk(name, String.valueOf(why));
        return cond;
    }
    interface Body { void run() throws Exception; }
    static void test(String name, Body b) {
        try { b.run(); } catch (Throwable e) { notOk(name, "threw " + describe(e)); }
    }
    static String describe(Throwable e) {
        String s = e.getClass().getSimpleName() + ": " + e.getMessage();
        if (e instanceof SQLException) s += " [SQLSTATE " + ((SQLException) e).getSQLState() + "]";
        return s;
    }

    // ------------------------------------------------------------ the warehouse
    // Every relation t_metabase.sh creates, with the type pgjdbc and Metabase report.
    static final Map<String, String> RELATIONS = new LinkedHashMap<>();
    static {
        for (String t : new String[]{"raw.leads", "raw.contracts", "raw.credentials", "staging.leads", "staging.contracts",
                                     "funnel_data_mart.funnel", "funnel_data_mart.leads", "origination_mart.plans",
                                     "origination_mart.originations", "sales_mart.sales_per_region", "sales_mart.orders",
                                     "shared_mart.customers", "shared_mart.calendar", "public.countries"})
            RELATIONS.put(t, "TABLE");
        RELATIONS.put("origination_mart.by_region", "VIEW");
        RELATIONS.put("origination_mart.monthly", "MATERIALIZED VIEW");
    }
    static final List<String> ALL_SCHEMAS = List.of("funnel_data_mart", "origination_mart", "public", "raw", "sales_mart",
                                                    "shared_mart", "staging");

    // ------------------------------------------------------------ the personas
    static class Persona {
        final String label, user, token;
        final Set<String> tables;          // schema.table it may read (so sees in catalogs)
        final Set<String> hiddenColumns;   // schema.table.column a "deny" mask removes
        final int metabaseUser;            // the Metabase user id in its remarks
        final String searchPath;           // the policy's starting search_path (defaults.search_path)
        Persona(String label, String user, String tokenVar, int metabaseUser, String searchPath, Collection<String> tables,
                String... hidden) {
            this.label = label; this.user = user; this.token = env(tokenVar, "");
            this.metabaseUser = metabaseUser;
            this.searchPath = searchPath;
            this.tables = new TreeSet<>(tables);
            this.hiddenColumns = new TreeSet<>(Arrays.asList(hidden));
        }
        SortedSet<String> schemas() {
            return tables.stream().map(t -> t.substring(0, t.indexOf('.'))).collect(Collectors.toCollection(TreeSet::new));
        }
        boolean sees(String schema, String table) { return tables.contains(schema + "." + table); }
    }
    static List<String> except(String... gone) {
        List<String> l = new ArrayList<>(RELATIONS.keySet());
        l.removeAll(Arrays.asList(gone));
        return l;
    }
    static final List<String> SHARED = List.of("shared_mart.customers", "shared_mart.calendar", "public.countries");
    static List<String> plus(List<String> a, String... b) { List<String> l = new ArrayList<>(a); l.addAll(Arrays.asList(b)); return l; }

    // The expected sets, from the policy by hand (search_path: the first matching
    // defaults.search_path entry, minus the schemas the person may not read):
    //  ana (data-engineers): data-engineers-write (raw, staging, funnel) + data-engineers-read-marts
    //    (origination, sales, shared): everything; full_catalog_visibility anyway.
    static final Persona ENGINEER = new Persona("engineer", "ana", "MB_TOKEN_ANA", 3, "staging, raw, public", RELATIONS.keySet());
    //  carla (data-scientists): data-scientists-read (raw, staging, funnel, origination, sales) +
    //    everyone-shared; data-scientists-no-secrets (priority 100) denies raw.credentials.
    static final Persona SCIENTIST = new Persona("scientist", "carla", "MB_TOKEN_CARLA", 5, "staging, raw, public", except("raw.credentials"));
    //  olga (squad-origination): squad-origination-marts (origination), squad-origination-funnel
    //    (funnel_data_mart.*, row filter), squad-origination-customers (masks, salary denied),
    //    everyone-shared (shared_mart, public).
    static final Persona ORIGINATION = new Persona("origination", "olga", "MB_TOKEN_OLGA", 7, "origination_mart, shared_mart, public",
        plus(SHARED, "funnel_data_mart.funnel", "funnel_data_mart.leads", "origination_mart.plans",
             "origination_mart.originations", "origination_mart.by_region", "origination_mart.monthly"),
        "shared_mart.customers.salary");
    //  sam (squad-sales): squad-sales-marts (sales), squad-sales-own-leads (funnel_data_mart.leads
    //    only, row filter), everyone-shared.
    static final Persona SALES = new Persona("sales", "sam", "MB_TOKEN_SAM", 9, "sales_mart, shared_mart, public",
        plus(SHARED, "sales_mart.sales_per_region", "sales_mart.orders", "funnel_data_mart.leads"));
    //  zed (no group): everyone-shared only.
    static final Persona NOBODY = new Persona("nobody", "zed", "MB_TOKEN_ZED", 11, "public", SHARED);
    //  metabase-svc (no group) is the impersonator; on its own it is like zed.
    static final Persona SERVICE = new Persona("impersonation", "metabase-svc", "MB_TOKEN_SVC", 12, "public", SHARED);

    // ------------------------------------------------------------ connections
    // The properties Metabase's PostgreSQL driver gives pgjdbc for a database
    // with SSL on, mode verify-full and a root certificate:
    //  - spec :postgres: subprotocol postgresql, subname //host:port/db,
    //    OpenSourceSubProtocolOverride=true, ApplicationName "Metabase v... [uuid]";
    //  - ssl-params: ssl=true, sslmode from "ssl-mode", sslrootcert = the PEM
    //    written to a file, sslpassword "" (always, so pgjdbc never prompts);
    //  - user / password (here: the JWT);
    //  - "additional-options" (a query string; the UI suggests prepareThreshold=0)
    //    merged last. Fetch size is not a connection property in Metabase: it
    //    sets 500 on every statement (sql-jdbc-fetch-size).
    // connectTimeout / socketTimeout are ours, to bound the test.
    static Properties metabaseProperties(Persona p, Map<String, String> additionalOptions) {
        Properties pr = new Properties();
        pr.setProperty("user", p.user);
        pr.setProperty("password", p.token);
        pr.setProperty("OpenSourceSubProtocolOverride", "true");
        pr.setProperty("ApplicationName", APPLICATION_NAME);
        pr.setProperty("ssl", "true");
        pr.setProperty("sslmode", "verify-full");
        pr.setProperty("sslrootcert", CA);
        pr.setProperty("sslpassword", "");
        pr.setProperty("connectTimeout", "10");
        pr.setProperty("socketTimeout", "60");
        if (additionalOptions != null) additionalOptions.forEach(pr::setProperty);
        return pr;
    }
    static String url() { return "jdbc:postgresql://" + HOST + ":" + PORT + "/" + DB; }

    // A connection as Metabase's pool hands it out (c3p0 testConnectionOnCheckout,
    // then set-default-connection-options!): isValid, the least-locking isolation
    // level the database supports, the impersonation role (Pro: "SET ROLE r;" or
    // "SET ROLE NONE;" through a plain Statement), read-only, auto-commit on,
    // holdability CLOSE_CURSORS_AT_COMMIT.
    static Connection connect(Persona p, Map<String, String> extra) throws SQLException {
        return DriverManager.getConnection(url(), metabaseProperties(p, extra));
    }
    static void checkout(Connection c, String role) throws SQLException {
        if (!c.isValid(5)) throw new SQLException("isValid() returned false", "08006");
        DatabaseMetaData md = c.getMetaData();
        int[] levels = {Connection.TRANSACTION_READ_UNCOMMITTED, Connection.TRANSACTION_REPEATABLE_READ,
                        Connection.TRANSACTION_READ_COMMITTED};
        for (int level : levels)
            if (md.supportsTransactionIsolationLevel(level)) { c.setTransactionIsolation(level); break; }
        if (role != null) setRole(c, role);
        c.setReadOnly(true);
        c.setAutoCommit(true);
        c.setHoldability(ResultSet.CLOSE_CURSORS_AT_COMMIT);
    }
    // driver.sql/set-role-statement :postgres: quoted when the name has anything
    // but letters, digits and _; default-database-role is NONE.
    static void setRole(Connection c, String role) throws SQLException {
        String sql = role.matches("[a-zA-Z0-9_]+") ? "SET ROLE " + role + ";" : "SET ROLE \"" + role + "\";";
        try (Statement s = c.createStatement()) { s.execute(sql); }
    }

    static Connection direct;
    // pgjdbc's TYPE_NAME and pg_get_expr's COLUMN_DEF qualify names the search_path
    // does not reach: the reference answers use the persona's search_path.
    // A fresh connection each time: pgjdbc caches type names per connection.
    static void directSearchPath(Persona p) throws SQLException {
        direct.close();
        direct = directConnect(p.searchPath);
    }
    static Connection directConnect(String searchPath) throws SQLException {
        Properties pr = new Properties();
        if (searchPath != null) pr.setProperty("currentSchema", searchPath);
        pr.setProperty("user", DIRECT_USER);
        pr.setProperty("password", DIRECT_PASSWORD);
        pr.setProperty("sslmode", "verify-full");
        pr.setProperty("sslrootcert", CA);
        pr.setProperty("connectTimeout", "10");
        pr.setProperty("socketTimeout", "60");
        pr.setProperty("ApplicationName", "metabase-test-reference");
        return DriverManager.getConnection("jdbc:postgresql://" + HOST + ":" + DIRECT_PORT + "/" + DB, pr);
    }

    // ------------------------------------------------------------ running SQL
    static String cell(ResultSet r, int i) throws SQLException {
        String v = r.getString(i);
        return v == null ? "NULL" : v;
    }
    static List<String> rows(ResultSet r) throws SQLException {
        List<String> out = new ArrayList<>();
        int cols = r.getMetaData().getColumnCount();
        while (r.next()) {
            StringBuilder b = new StringBuilder();
            for (int i = 1; i <= cols; i++) { if (i > 1) b.append('|'); b.append(cell(r, i)); }
            out.add(b.toString());
        }
        return out;
    }
    static List<String> rows(ResultSet r, String... cols) throws SQLException {
        List<String> out = new ArrayList<>();
        while (r.next()) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < cols.length; i++) {
                if (i > 0) b.append('|');
                String v = r.getString(cols[i]);
                b.append(v == null ? "NULL" : v);
            }
            out.add(b.toString());
        }
        return out;
    }
    static void bind(PreparedStatement ps, Object[] params) throws SQLException {
        for (int i = 0; i < params.length; i++) {
            Object v = params[i];
            // set-parameter: LocalDate goes as Types/DATE, the rest through setObject
            if (v instanceof LocalDate) ps.setObject(i + 1, v, Types.DATE);
            else ps.setObject(i + 1, v);
        }
    }
    // How Metabase's query processor runs a query (sql_jdbc/execute.clj): a plain
    // Statement when there are no parameters, else a PreparedStatement; forward
    // only, read only, CLOSE_CURSORS_AT_COMMIT, FETCH_FORWARD, fetch size 500,
    // setMaxRows.
    static List<String> mbQuery(Connection c, int maxRows, String sql, Object... params) throws SQLException {
        if (params.length == 0) {
            try (Statement s = c.createStatement(ResultSet.TYPE_FORWARD_ONLY, ResultSet.CONCUR_READ_ONLY,
                                                 ResultSet.CLOSE_CURSORS_AT_COMMIT)) {
                s.setFetchDirection(ResultSet.FETCH_FORWARD);
                if (s.getFetchSize() == 0) s.setFetchSize(500);
                s.setMaxRows(maxRows);
                if (!s.execute(sql)) throw new SQLException("Select statement did not produce a ResultSet for native query");
                try (ResultSet r = s.getResultSet()) { return rows(r); }
            }
        }
        try (PreparedStatement ps = c.prepareStatement(sql, ResultSet.TYPE_FORWARD_ONLY, ResultSet.CONCUR_READ_ONLY,
                                                       ResultSet.CLOSE_CURSORS_AT_COMMIT)) {
            ps.setFetchDirection(ResultSet.FETCH_FORWARD);
            if (ps.getFetchSize() == 0) ps.setFetchSize(500);
            bind(ps, params);
            ps.setMaxRows(maxRows);
            try (ResultSet r = ps.executeQuery()) { return rows(r); }
        }
    }
    static List<String> mbQuery(Connection c, String sql, Object... params) throws SQLException {
        return mbQuery(c, 2000, sql, params);
    }
    // Sync queries (reducible-query / jdbc/query): a PreparedStatement with the parameters.
    static List<String> syncQuery(Connection c, String sql, List<?> params) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            bind(ps, params.toArray());
            try (ResultSet r = ps.executeQuery()) { return rows(r); }
        }
    }
    static List<String> directQuery(String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = direct.prepareStatement(sql)) {
            bind(ps, params);
            try (ResultSet r = ps.executeQuery()) { return rows(r); }
        }
    }
    static String one(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) { r.next(); return r.getString(1); }
    }

    static String hash(String label) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            StringBuilder b = new StringBuilder();
            for (byte x : d.digest(("martgate-metabase-test:" + label).getBytes(StandardCharsets.UTF_8)))
                b.append(String.format("%02x", x));
            return b.toString();
        } catch (Exception e) { throw new RuntimeException(e); }
    }
    // qp.util/query->remark, as the SQL drivers prepend it: "-- " + remark + "\n".
    static String mbql(int userId, String label) {
        return "-- Metabase:: userID: " + userId + " queryType: MBQL queryHash: " + hash(label) + "\n";
    }
    static String nativeRemark(int userId, String label) {
        return "-- Metabase:: userID: " + userId + " queryType: native queryHash: " + hash(label) + "\n";
    }

    // ------------------------------------------------------------ comparisons
    static String diff(Collection<String> expected, Collection<String> got) {
        List<String> missing = new ArrayList<>(expected); missing.removeAll(got);
        List<String> extra = new ArrayList<>(got); extra.removeAll(expected);
        if (missing.isEmpty() && extra.isEmpty()) return "same elements, different order or multiplicity: expected "
                                                          + expected + " got " + got;
        return "missing " + cut(missing) + "; unexpected " + cut(extra);
    }
    static String cut(List<String> l) { return l.size() > 25 ? l.subList(0, 25) + " (+" + (l.size() - 25) + ")" : l.toString(); }
    static void sameList(String name, List<String> expected, List<String> got) {
        check(name, expected.equals(got), diff(expected, got));
    }
    static void sameSet(String name, Collection<String> expected, Collection<String> got) {
        List<String> e = new ArrayList<>(expected), g = new ArrayList<>(got);
        Collections.sort(e); Collections.sort(g);
        check(name, e.equals(g), diff(e, g));
    }
    static void allowed(String name, Connection c, List<String> expected, String sql, Object... params) {
        try {
            List<String> got = mbQuery(c, sql, params);
            check(name, expected.equals(got), expected.isEmpty() && got.isEmpty() ? "" : diff(expected, got));
        } catch (SQLException e) { notOk(name, "failed: " + describe(e)); }
    }
    static void denied(String name, Connection c, String sql, Object... params) {
        try {
            List<String> got = mbQuery(c, sql, params);
            notOk(name, "allowed, expected SQLSTATE 42501; rows " + cut(got));
        } catch (SQLException e) {
            check(name, "42501".equals(e.getSQLState()), describe(e));
        }
    }

    // ------------------------------------------------------------ Metabase's catalog SQL
    // Written out as HoneySQL formats Metabase's forms (dialect :ansi, quoted
    // identifiers, strings as parameters unless inlined, IN lists as ? each).
    static String marks(int k) { return String.join(", ", Collections.nCopies(k, "?")); }

    // postgres.clj get-tables-sql (describe-database*): schemas as parameters.
    static String describeDatabaseSql(int nSchemas) {
        return "SELECT \"n\".\"nspname\" AS \"schema\", \"c\".\"relname\" AS \"name\", "
            + "CASE \"c\".\"relkind\" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' "
            + "WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS \"type\", "
            + "\"d\".\"description\" AS \"description\", \"stat\".\"n_live_tup\" AS \"estimated_row_count\" "
            + "FROM \"pg_catalog\".\"pg_class\" AS \"c\" "
            + "INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"n\" ON \"c\".\"relnamespace\" = \"n\".\"oid\" "
            + "LEFT JOIN \"pg_catalog\".\"pg_description\" AS \"d\" ON (\"c\".\"oid\" = \"d\".\"objoid\") "
            + "AND (\"d\".\"objsubid\" = 0) AND (\"d\".\"classoid\" = 'pg_class'::regclass) "
            + "LEFT JOIN \"pg_stat_user_tables\" AS \"stat\" ON (\"n\".\"nspname\" = \"stat\".\"schemaname\") "
            + "AND (\"c\".\"relname\" = \"stat\".\"relname\") "
            + "WHERE (\"c\".\"relnamespace\" = \"n\".\"oid\") AND (\"n\".\"nspname\" !~ ?) AND (\"n\".\"nspname\" <> ?) "
            + "AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND (\"n\".\"nspname\" IN (" + marks(nSchemas) + ")) "
            + "ORDER BY \"type\" ASC, \"schema\" ASC, \"name\" ASC";
    }
    static List<Object> describeDatabaseParams(Collection<String> schemas) {
        List<Object> l = new ArrayList<>(List.of("^pg_", "information_schema"));
        l.addAll(schemas);
        return l;
    }

    // postgres.clj describe-fields-sql: information_schema.columns left-joined to the
    // primary keys (table_constraints x key_column_usage), UNION ALL the columns of
    // materialized views from pg_class / pg_namespace / pg_attribute / pg_type.
    static String describeFieldsSql(int nSchemas, int nTables) {
        String tablesC = nTables > 0 ? " AND (\"c\".\"table_name\" IN (" + marks(nTables) + "))" : "";
        String tablesPc = nTables > 0 ? " AND (\"pc\".\"relname\" IN (" + marks(nTables) + "))" : "";
        return "SELECT \"c\".\"column_name\" AS \"name\", "
            + "CASE WHEN \"c\".\"udt_schema\" IN ('public', 'pg_catalog') THEN FORMAT('%s', \"c\".\"udt_name\") "
            + "ELSE FORMAT('\"%s\".\"%s\"', \"c\".\"udt_schema\", \"c\".\"udt_name\") END AS \"database-type\", "
            + "\"c\".\"ordinal_position\" - 1 AS \"database-position\", \"c\".\"table_schema\" AS \"table-schema\", "
            + "\"c\".\"table_name\" AS \"table-name\", \"pk\".\"column_name\" IS NOT NULL AS \"pk?\", "
            + "COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST(\"c\".\"table_schema\" AS TEXT), CAST(\"c\".\"table_name\" AS TEXT)) "
            + "AS REGCLASS) AS OID), \"c\".\"ordinal_position\") AS \"field-comment\", "
            + "((\"column_default\" IS NULL) OR (LOWER(\"column_default\") = 'null')) AND (\"is_nullable\" = 'NO') "
            + "AND NOT (((\"column_default\" IS NOT NULL) AND (\"column_default\" LIKE '%nextval(%')) OR (\"is_identity\" <> 'NO')) "
            + "AS \"database-required\", "
            + "((\"column_default\" IS NOT NULL) AND (\"column_default\" LIKE '%nextval(%')) OR (\"is_identity\" <> 'NO') "
            + "AS \"database-is-auto-increment\" "
            + "FROM \"information_schema\".\"columns\" AS \"c\" "
            + "LEFT JOIN (SELECT \"tc\".\"table_schema\", \"tc\".\"table_name\", \"kc\".\"column_name\" "
            + "FROM \"information_schema\".\"table_constraints\" AS \"tc\" "
            + "INNER JOIN \"information_schema\".\"key_column_usage\" AS \"kc\" ON (\"tc\".\"constraint_name\" = \"kc\".\"constraint_name\") "
            + "AND (\"tc\".\"table_schema\" = \"kc\".\"table_schema\") AND (\"tc\".\"table_name\" = \"kc\".\"table_name\") "
            + "WHERE \"tc\".\"constraint_type\" = 'PRIMARY KEY') AS \"pk\" "
            + "ON (\"c\".\"table_schema\" = \"pk\".\"table_schema\") AND (\"c\".\"table_name\" = \"pk\".\"table_name\") "
            + "AND (\"c\".\"column_name\" = \"pk\".\"column_name\") "
            + "WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' "
            + "AND (\"c\".\"table_schema\" IN (" + marks(nSchemas) + "))" + tablesC + " "
            + "UNION ALL "
            + "SELECT \"pa\".\"attname\" AS \"name\", "
            + "CASE WHEN \"ptn\".\"nspname\" IN ('public', 'pg_catalog') THEN FORMAT('%s', \"pt\".\"typname\") "
            + "ELSE FORMAT('\"%s\".\"%s\"', \"ptn\".\"nspname\", \"pt\".\"typname\") END AS \"database-type\", "
            + "\"pa\".\"attnum\" - 1 AS \"database-position\", \"pn\".\"nspname\" AS \"table-schema\", "
            + "\"pc\".\"relname\" AS \"table-name\", FALSE AS \"pk?\", NULL AS \"field-comment\", "
            + "FALSE AS \"database-required\", FALSE AS \"database-is-auto-increment\" "
            + "FROM \"pg_catalog\".\"pg_class\" AS \"pc\" "
            + "INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"pn\" ON \"pn\".\"oid\" = \"pc\".\"relnamespace\" "
            + "INNER JOIN \"pg_catalog\".\"pg_attribute\" AS \"pa\" ON \"pa\".\"attrelid\" = \"pc\".\"oid\" "
            + "INNER JOIN \"pg_catalog\".\"pg_type\" AS \"pt\" ON \"pt\".\"oid\" = \"pa\".\"atttypid\" "
            + "INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"ptn\" ON \"ptn\".\"oid\" = \"pt\".\"typnamespace\" "
            + "WHERE (\"pc\".\"relkind\" = 'm') AND (\"pa\".\"attnum\" >= 1) "
            + "AND (\"pn\".\"nspname\" IN (" + marks(nSchemas) + "))" + tablesPc + " "
            + "ORDER BY \"table-schema\" ASC, \"table-name\" ASC, \"database-position\" ASC";
    }
    static List<Object> describeFieldsParams(Collection<String> schemas, Collection<String> tables) {
        List<Object> l = new ArrayList<>(schemas);
        l.addAll(tables);
        l.addAll(schemas);
        l.addAll(tables);
        return l;
    }

    // postgres.clj describe-fks-sql: pg_constraint joined to pg_class, pg_namespace and
    // pg_attribute on both sides (names unqualified, as Metabase writes them).
    static String describeFksSql(int nSchemas) {
        return "SELECT \"fk_ns\".\"nspname\" AS \"fk-table-schema\", \"fk_table\".\"relname\" AS \"fk-table-name\", "
            + "\"fk_column\".\"attname\" AS \"fk-column-name\", \"pk_ns\".\"nspname\" AS \"pk-table-schema\", "
            + "\"pk_table\".\"relname\" AS \"pk-table-name\", \"pk_column\".\"attname\" AS \"pk-column-name\" "
            + "FROM \"pg_constraint\" AS \"c\" "
            + "INNER JOIN \"pg_class\" AS \"fk_table\" ON \"c\".\"conrelid\" = \"fk_table\".\"oid\" "
            + "INNER JOIN \"pg_namespace\" AS \"fk_ns\" ON \"c\".\"connamespace\" = \"fk_ns\".\"oid\" "
            + "INNER JOIN \"pg_attribute\" AS \"fk_column\" ON \"c\".\"conrelid\" = \"fk_column\".\"attrelid\" "
            + "INNER JOIN \"pg_class\" AS \"pk_table\" ON \"c\".\"confrelid\" = \"pk_table\".\"oid\" "
            + "INNER JOIN \"pg_namespace\" AS \"pk_ns\" ON \"pk_table\".\"relnamespace\" = \"pk_ns\".\"oid\" "
            + "INNER JOIN \"pg_attribute\" AS \"pk_column\" ON \"c\".\"confrelid\" = \"pk_column\".\"attrelid\" "
            + "WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND (\"c\".\"contype\" = 'f'::char) "
            + "AND (\"fk_column\".\"attnum\" = ANY(c.conkey)) AND (\"pk_column\".\"attnum\" = ANY(c.confkey)) "
            + "AND (\"fk_ns\".\"nspname\" IN (" + marks(nSchemas) + ")) "
            + "ORDER BY \"fk-table-schema\" ASC, \"fk-table-name\" ASC";
    }

    // postgres.clj describe-indexes-sql: the first column of every non-partial index.
    static String describeIndexesSql(int nSchemas) {
        return "SELECT \"tmp\".\"table-schema\", \"tmp\".\"table-name\", "
            + "TRIM(BOTH '\"' FROM PG_CATALOG.PG_GET_INDEXDEF(\"tmp\".\"ci_oid\", \"tmp\".\"pos\", FALSE)) AS \"field-name\" "
            + "FROM (SELECT \"n\".\"nspname\" AS \"table-schema\", \"ct\".\"relname\" AS \"table-name\", \"ci\".\"oid\" AS \"ci_oid\", "
            + "(INFORMATION_SCHEMA._PG_EXPANDARRAY(\"i\".\"indkey\")).\"n\" AS \"pos\" "
            + "FROM \"pg_catalog\".\"pg_class\" AS \"ct\" "
            + "INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"n\" ON \"ct\".\"relnamespace\" = \"n\".\"oid\" "
            + "INNER JOIN \"pg_catalog\".\"pg_index\" AS \"i\" ON \"ct\".\"oid\" = \"i\".\"indrelid\" "
            + "INNER JOIN \"pg_catalog\".\"pg_class\" AS \"ci\" ON \"ci\".\"oid\" = \"i\".\"indexrelid\" "
            + "WHERE (PG_CATALOG.PG_GET_EXPR(\"i\".\"indpred\", \"i\".\"indrelid\") IS NULL) "
            + "AND n.nspname !~ '^information_schema|catalog_history|pg_' "
            + "AND (\"n\".\"nspname\" IN (" + marks(nSchemas) + "))) AS \"tmp\" "
            + "WHERE \"tmp\".\"pos\" = 1";
    }

    // postgres.clj current-user-table-privileges (the table-privileges feature that
    // describe-database filters tables with): pg_tables U pg_views U pg_matviews with
    // has_any_column_privilege / has_table_privilege / has_schema_privilege. No parameters.
    static final String TABLE_PRIVILEGES_SQL = String.join("\n",
        "with table_privileges as (",
        " select",
        "   NULL as role,",
        "   t.schemaname as schema,",
        "   t.objectname as table,",
        "   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'update') as update,",
        "   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'select') as select,",
        "   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'insert') as insert,",
        "   pg_catalog.has_table_privilege(     current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'delete') as delete",
        " from (",
        "   select schemaname, tablename as objectname from pg_catalog.pg_tables",
        "   union",
        "   select schemaname, viewname as objectname from pg_catalog.pg_views",
        "   union",
        "   select schemaname, matviewname as objectname from pg_catalog.pg_matviews",
        " ) t",
        " where t.schemaname !~ '^pg_'",
        "   and t.schemaname <> 'information_schema'",
        "   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')",
        ")",
        "select t.*",
        "from table_privileges t");

    // postgres.clj enum-types (describe-fields-pre-process-xf, dynamic-database-types-lookup).
    static final String ENUM_TYPES_SQL = "SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        + "WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)";

    // ------------------------------------------------------------ 1-3: connection and sync
    static void connectionChecks(Persona p) {
        String L = p.label + ": ";
        test(L + "connect with Metabase's properties and check out", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                ok(L + "connect with Metabase's properties and check out (isValid, isolation, read-only, holdability)");
                String app = one(c, "show application_name");
                check(L + "ApplicationName reaches the warehouse", APPLICATION_NAME.equals(app), app);
                String path = one(c, "show search_path");
                check(L + "search_path is the policy's default (" + p.searchPath + ")",
                      p.searchPath.equals(path.replace("\"", "")), path);
                // db-default-timezone: prepareStatement "show timezone;"
                try (PreparedStatement ps = c.prepareStatement("show timezone;"); ResultSet r = ps.executeQuery()) {
                    check(L + "db-default-timezone (\"show timezone;\" prepared)", r.next() && r.getString(1) != null, "no row");
                }
                // dbms-version from DatabaseMetaData
                DatabaseMetaData md = c.getMetaData();
                check(L + "dbms version from DatabaseMetaData", md.getDatabaseMajorVersion() == 15
                      && "PostgreSQL".equals(md.getDatabaseProductName()), md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            }
        });
    }

    static final String[] TABLE_TYPES = {"TABLE", "PARTITIONED TABLE", "VIEW", "FOREIGN TABLE", "MATERIALIZED VIEW",
                                         "EXTERNAL TABLE", "DYNAMIC_TABLE"};
    static boolean systemSchema(String s) { return s.startsWith("pg_") || s.equals("information_schema"); }

    static void metadataSync(Persona p) {
        String L = p.label + ": DatabaseMetaData ";
        test(L + "sync", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                directSearchPath(p);
                DatabaseMetaData md = c.getMetaData(), dmd = direct.getMetaData();
                // getSchemas, minus what Metabase excludes (pg_catalog, information_schema)
                List<String> schemas = new ArrayList<>();
                try (ResultSet r = md.getSchemas()) { while (r.next()) schemas.add(r.getString("TABLE_SCHEM")); }
                schemas.removeIf(MetabaseSync::systemSchema);
                sameSet(L + "getSchemas: exactly the schemas of its datasets", p.schemas(), schemas);

                // getTables over the whole database and schema by schema (fast-active-tables)
                List<String> all;
                try (ResultSet r = md.getTables(null, null, "%", TABLE_TYPES)) { all = rows(r, "TABLE_SCHEM", "TABLE_NAME"); }
                all.removeIf(s -> systemSchema(s.substring(0, s.indexOf('|'))));
                sameSet(L + "getTables(all schemas): exactly its relations",
                        p.tables.stream().map(t -> t.replace('.', '|')).collect(Collectors.toList()), all);
                List<String> perSchema = new ArrayList<>(), expectDetail = new ArrayList<>();
                for (String s : p.schemas()) {
                    try (ResultSet r = md.getTables(null, s, "%", TABLE_TYPES)) {
                        perSchema.addAll(rows(r, "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE", "REMARKS"));
                    }
                    try (ResultSet r = dmd.getTables(null, s, "%", TABLE_TYPES)) {
                        for (String row : rows(r, "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE", "REMARKS")) {
                            String[] f = row.split("\\|", -1);
                            if (p.sees(f[0], f[1])) expectDetail.add(row);
                        }
                    }
                }
                sameList(L + "getTables per schema: types and remarks as the warehouse has them", expectDetail, perSchema);
                List<String> leaked = new ArrayList<>();
                for (String s : ALL_SCHEMAS) {
                    if (p.schemas().contains(s)) continue;
                    try (ResultSet r = md.getTables(null, s, "%", null)) { leaked.addAll(rows(r, "TABLE_SCHEM", "TABLE_NAME")); }
                    try (ResultSet r = md.getColumns(null, s, "%", "%")) { leaked.addAll(rows(r, "TABLE_SCHEM", "TABLE_NAME", "COLUMN_NAME")); }
                }
                for (String t : RELATIONS.keySet()) {
                    if (p.tables.contains(t)) continue;
                    String[] st = t.split("\\.");
                    try (ResultSet r = md.getTables(null, st[0], st[1], null)) { leaked.addAll(rows(r, "TABLE_SCHEM", "TABLE_NAME")); }
                }
                check(L + "getTables / getColumns of hidden schemas and tables by name: nothing", leaked.isEmpty(), leaked);

                // getColumns, getPrimaryKeys, getImportedKeys, getExportedKeys per visible relation
                String[] colCols = {"TABLE_SCHEM", "TABLE_NAME", "COLUMN_NAME", "TYPE_NAME", "ORDINAL_POSITION", "IS_NULLABLE",
                                    "REMARKS", "COLUMN_DEF", "IS_AUTOINCREMENT"};
                String[] pkCols = {"TABLE_SCHEM", "TABLE_NAME", "COLUMN_NAME", "KEY_SEQ", "PK_NAME"};
                String[] fkCols = {"PKTABLE_SCHEM", "PKTABLE_NAME", "PKCOLUMN_NAME", "FKTABLE_SCHEM", "FKTABLE_NAME",
                                   "FKCOLUMN_NAME", "KEY_SEQ", "FK_NAME"};
                List<String> gotCols = new ArrayList<>(), expCols = new ArrayList<>(), gotPk = new ArrayList<>(), expPk = new ArrayList<>(),
                             gotImp = new ArrayList<>(), expImp = new ArrayList<>(), gotExp = new ArrayList<>(), expExp = new ArrayList<>();
                for (String t : p.tables) {
                    String[] st = t.split("\\.");
                    try (ResultSet r = md.getColumns(null, st[0], st[1], "%")) { gotCols.addAll(rows(r, colCols)); }
                    try (ResultSet r = dmd.getColumns(null, st[0], st[1], "%")) {
                        // the person's table has no denied column: pgjdbc numbers the
                        // columns it lists (row_number over attnum), so the ones after
                        // a denied column move up by one
                        int hiddenBefore = 0;
                        for (String row : rows(r, colCols)) {
                            String[] f = row.split("\\|", -1);
                            if (p.hiddenColumns.contains(f[0] + "." + f[1] + "." + f[2])) { hiddenBefore++; continue; }
                            f[4] = String.valueOf(Integer.parseInt(f[4]) - hiddenBefore);
                            expCols.add(String.join("|", f));
                        }
                    }
                    try (ResultSet r = md.getPrimaryKeys(null, st[0], st[1])) { gotPk.addAll(rows(r, pkCols)); }
                    try (ResultSet r = dmd.getPrimaryKeys(null, st[0], st[1])) { expPk.addAll(rows(r, pkCols)); }
                    try (ResultSet r = md.getImportedKeys(null, st[0], st[1])) { gotImp.addAll(rows(r, fkCols)); }
                    try (ResultSet r = dmd.getImportedKeys(null, st[0], st[1])) { expImp.addAll(visibleKeys(p, rows(r, fkCols))); }
                    try (ResultSet r = md.getExportedKeys(null, st[0], st[1])) { gotExp.addAll(rows(r, fkCols)); }
                    try (ResultSet r = dmd.getExportedKeys(null, st[0], st[1])) { expExp.addAll(visibleKeys(p, rows(r, fkCols))); }
                }
                sameList(L + "getColumns: the warehouse's columns of its relations"
                         + (p.hiddenColumns.isEmpty() ? "" : ", without denied " + p.hiddenColumns), expCols, gotCols);
                sameList(L + "getPrimaryKeys", expPk, gotPk);
                sameList(L + "getImportedKeys: only keys between relations it sees", expImp, gotImp);
                sameList(L + "getExportedKeys: only keys between relations it sees", expExp, gotExp);
            }
        });
    }
    static List<String> visibleKeys(Persona p, List<String> keyRows) {
        List<String> out = new ArrayList<>();
        for (String row : keyRows) {
            String[] f = row.split("\\|", -1);
            if (p.sees(f[0], f[1]) && p.sees(f[3], f[4])) out.add(row);
        }
        return out;
    }

    static void metabaseCatalogQueries(Persona p) {
        String L = p.label + ": Metabase ";
        test(L + "catalog queries", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                directSearchPath(p);
                // syncable-schemas: getSchemas minus excluded-schemas and metabase_cache*
                List<String> syncable = new ArrayList<>();
                try (ResultSet r = c.getMetaData().getSchemas()) { while (r.next()) syncable.add(r.getString("TABLE_SCHEM")); }
                syncable.removeIf(s -> s.equals("information_schema") || s.equals("pg_catalog") || s.startsWith("metabase_cache"));
                List<String> visibleTables = new ArrayList<>(p.tables);

                // current-user-table-privileges: the tables it has SELECT on
                try {
                    List<String> got = new ArrayList<>();
                    try (PreparedStatement ps = c.prepareStatement(TABLE_PRIVILEGES_SQL); ResultSet r = ps.executeQuery()) {
                        while (r.next()) if (r.getBoolean("select")) got.add(r.getString("schema") + "." + r.getString("table"));
                    }
                    sameSet(L + "table privileges (pg_tables/pg_views/pg_matviews, has_*_privilege): exactly its relations",
                            visibleTables, got);
                } catch (SQLException e) { notOk(L + "table privileges (pg_tables/pg_views/pg_matviews, has_*_privilege): exactly its relations", describe(e)); }

                // describe-database: get-tables-sql with the syncable schemas, then with every
                // schema of the warehouse (a schema list synced before the policy changed)
                String dbCols = "schema|name|type|description";
                for (boolean stale : new boolean[]{false, true}) {
                    String name = L + "describe-database (pg_class, pg_namespace, pg_description, pg_stat_user_tables)"
                                  + (stale ? " with every schema as parameters" : " with its schemas as parameters");
                    try {
                        List<String> params = stale ? ALL_SCHEMAS : syncable;
                        List<String> got = new ArrayList<>();
                        for (String row : syncQuery(c, describeDatabaseSql(params.size()), describeDatabaseParams(params)))
                            got.add(dropLast(row));   // estimated_row_count depends on the statistics collector
                        List<String> exp = new ArrayList<>();
                        for (String row : syncQuery(direct, describeDatabaseSql(ALL_SCHEMAS.size()), describeDatabaseParams(ALL_SCHEMAS))) {
                            String[] f = row.split("\\|", -1);
                            if (p.sees(f[0], f[1])) exp.add(dropLast(row));
                        }
                        sameList(name + ": exactly its relations (" + dbCols + ")", exp, got);
                    } catch (SQLException e) { notOk(name, describe(e)); }
                }

                // describe-fields for its schemas, and for one table (schema-names + table-names)
                try {
                    List<String> schemas = new ArrayList<>(p.schemas());
                    List<String> got = syncQuery(c, describeFieldsSql(schemas.size(), 0), describeFieldsParams(schemas, List.of()));
                    List<String> exp = new ArrayList<>();
                    for (String row : syncQuery(direct, describeFieldsSql(schemas.size(), 0), describeFieldsParams(schemas, List.of()))) {
                        String[] f = row.split("\\|", -1);  // name|type|position|schema|table|pk?|comment|required|autoinc
                        if (p.sees(f[3], f[4]) && !p.hiddenColumns.contains(f[3] + "." + f[4] + "." + f[0])) exp.add(row);
                    }
                    sameList(L + "describe-fields (information_schema.columns, table_constraints, key_column_usage, "
                             + "pg_attribute, pg_type): exactly its columns", exp, got);
                } catch (SQLException e) { notOk(L + "describe-fields (information_schema.columns, table_constraints, key_column_usage, "
                                                 + "pg_attribute, pg_type): exactly its columns", describe(e)); }
                try {
                    String t = p.tables.contains("shared_mart.customers") ? "shared_mart.customers" : p.tables.iterator().next();
                    String[] st = t.split("\\.");
                    List<Object> params = describeFieldsParams(List.of(st[0]), List.of(st[1]));
                    List<String> got = syncQuery(c, describeFieldsSql(1, 1), params);
                    List<String> exp = new ArrayList<>();
                    for (String row : syncQuery(direct, describeFieldsSql(1, 1), params)) {
                        String[] f = row.split("\\|", -1);
                        if (!p.hiddenColumns.contains(f[3] + "." + f[4] + "." + f[0])) exp.add(row);
                    }
                    check(L + "describe-fields of one table (" + t + ")", !got.isEmpty() && exp.equals(got), diff(exp, got));
                } catch (SQLException e) { notOk(L + "describe-fields of one table", describe(e)); }

                // describe-fks: only keys whose both ends it sees
                try {
                    List<String> schemas = new ArrayList<>(p.schemas());
                    List<String> got = syncQuery(c, describeFksSql(schemas.size()), schemas);
                    List<String> exp = new ArrayList<>();
                    for (String row : syncQuery(direct, describeFksSql(schemas.size()), schemas)) {
                        String[] f = row.split("\\|", -1);
                        if (p.sees(f[0], f[1]) && p.sees(f[3], f[4])) exp.add(row);
                    }
                    sameSet(L + "describe-fks (pg_constraint, pg_class, pg_namespace, pg_attribute): only keys between its relations", exp, got);
                } catch (SQLException e) { notOk(L + "describe-fks (pg_constraint, pg_class, pg_namespace, pg_attribute): only keys between its relations", describe(e)); }

                // describe-indexes
                try {
                    List<String> schemas = new ArrayList<>(p.schemas());
                    List<String> got = syncQuery(c, describeIndexesSql(schemas.size()), schemas);
                    List<String> exp = new ArrayList<>();
                    for (String row : syncQuery(direct, describeIndexesSql(schemas.size()), schemas)) {
                        String[] f = row.split("\\|", -1);
                        if (p.sees(f[0], f[1])) exp.add(row);
                    }
                    sameSet(L + "describe-indexes (pg_index, pg_get_indexdef, _pg_expandarray): only indexes of its relations", exp, got);
                } catch (SQLException e) { notOk(L + "describe-indexes (pg_index, pg_get_indexdef, _pg_expandarray): only indexes of its relations", describe(e)); }

                // enum-types
                try {
                    List<String> got = syncQuery(c, ENUM_TYPES_SQL, List.of());
                    List<String> exp = new ArrayList<>();
                    for (String row : syncQuery(direct, ENUM_TYPES_SQL, List.of()))
                        if (p.schemas().contains(row.substring(0, row.indexOf('|')))) exp.add(row);
                    sameSet(L + "enum-types (pg_type, pg_namespace, pg_enum): only the enums of its schemas", exp, got);
                } catch (SQLException e) { notOk(L + "enum-types (pg_type, pg_namespace, pg_enum): only the enums of its schemas", describe(e)); }
            }
        });
    }
    static String dropLast(String row) { return row.substring(0, row.lastIndexOf('|')); }

    // ------------------------------------------------------------ 4: queries
    static final LocalDate OCT5 = LocalDate.of(2026, 10, 5), OCT20 = LocalDate.of(2026, 10, 20),
                           MAR1 = LocalDate.of(2026, 3, 1), AUG1 = LocalDate.of(2026, 8, 1);
    // Columns of shared_mart.customers with the masks of squad-origination-customers.
    static final Map<String, String> ORIGINATION_CUSTOMER_MASKS = new LinkedHashMap<>();
    static {
        ORIGINATION_CUSTOMER_MASKS.put("id", "id");
        ORIGINATION_CUSTOMER_MASKS.put("email", hmacSql("email"));                            // hash
        ORIGINATION_CUSTOMER_MASKS.put("cpf", "'***' || right(cpf::text, 4)");                 // last4
        ORIGINATION_CUSTOMER_MASKS.put("phone", "CASE WHEN phone IS NULL THEN NULL ELSE '***' END"); // redact
        ORIGINATION_CUSTOMER_MASKS.put("birth_date", "NULL::date");                            // null
        ORIGINATION_CUSTOMER_MASKS.put("name", "left(name, 1) || '.'");                        // expr
    }
    // The hash mask's expected value: HMAC-SHA256 (RFC 2104) of value::text
    // under the key in MB_HASH_KEY_FILE (one trailing newline stripped), the
    // pads computed here and the two SHA-256 passes by the warehouse's sha256().
    static String hmacSql(String col) {
        try {
            byte[] key = java.nio.file.Files.readAllBytes(java.nio.file.Path.of(System.getenv("MB_HASH_KEY_FILE")));
            int n = key.length;
            if (n > 0 && key[n - 1] == '\n') n--;
            if (n > 0 && key[n - 1] == '\r') n--;
            key = Arrays.copyOf(key, n);
            if (key.length > 64) key = MessageDigest.getInstance("SHA-256").digest(key);
            StringBuilder ipad = new StringBuilder(), opad = new StringBuilder();
            for (int i = 0; i < 64; i++) {
                int b = i < key.length ? key[i] & 0xff : 0;
                ipad.append(String.format("%02x", b ^ 0x36));
                opad.append(String.format("%02x", b ^ 0x5c));
            }
            return "encode(sha256(decode('" + opad + "', 'hex') || sha256(decode('" + ipad + "', 'hex') || convert_to("
                + col + "::text, 'UTF8'))), 'hex')";
        } catch (Exception e) {
            throw new RuntimeException("MB_HASH_KEY_FILE: " + e, e);
        }
    }
    static List<String> syncedColumns(Connection c, String schema, String table) throws SQLException {
        List<String> cols = new ArrayList<>();
        try (ResultSet r = c.getMetaData().getColumns(null, schema, table, "%")) { while (r.next()) cols.add(r.getString("COLUMN_NAME")); }
        return cols;
    }
    // The "view this table" MBQL query as Metabase compiles it from the synced fields.
    static String viewTableSql(int userId, String label, String schema, String table, List<String> cols, String orderBy) {
        String q = "\"" + schema + "\".\"" + table + "\"";
        String sel = cols.stream().map(col -> q + ".\"" + col + "\" AS \"" + col + "\"").collect(Collectors.joining(", "));
        return mbql(userId, label) + "SELECT " + sel + " FROM " + q + " ORDER BY " + q + ".\"" + orderBy + "\" ASC LIMIT 2000";
    }

    static final String ORIG_COUNT = "SELECT \"origination_mart\".\"originations\".\"region\" AS \"region\", COUNT(*) AS \"count\" "
        + "FROM \"origination_mart\".\"originations\" WHERE \"origination_mart\".\"originations\".\"n\" > ? "
        + "GROUP BY \"origination_mart\".\"originations\".\"region\" ORDER BY \"origination_mart\".\"originations\".\"region\" ASC LIMIT 2000";
    static final String ORIG_COUNT_DIRECT = "SELECT region, count(*) FROM origination_mart.originations WHERE n > ? GROUP BY region ORDER BY region";

    static void originationQueries(Persona p) {
        String L = p.label + ": ";
        int u = p.metabaseUser;
        test(L + "queries", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                // 1. the same MBQL question 6 times: pgjdbc switches to a named server-side
                //    statement after prepareThreshold (5) executions
                List<String> exp = directQuery(ORIG_COUNT_DIRECT, 3);
                boolean right = true; String bad = "";
                for (int i = 0; i < 6; i++) {
                    List<String> got = mbQuery(c, mbql(u, "orig-count") + ORIG_COUNT, 3);
                    if (!got.equals(exp)) { right = false; bad = "execution " + (i + 1) + ": " + diff(exp, got); }
                }
                check(L + "MBQL count by region with a parameter, 6 executions (past prepareThreshold): direct answer", right, bad);
                // 2. date bucketing, a join Metabase aliases, date parameters
                allowed(L + "MBQL join with month bucketing and date parameters: direct answer", c,
                    directQuery("SELECT CAST(date_trunc('month', o.month) AS date), p.name, sum(o.n) FROM origination_mart.originations o "
                                + "LEFT JOIN origination_mart.plans p ON o.plan_id = p.id WHERE o.month >= ? AND o.month < ? "
                                + "GROUP BY 1, 2 ORDER BY 1, 2", MAR1, AUG1),
                    mbql(u, "orig-join") + "SELECT CAST(DATE_TRUNC('month', \"origination_mart\".\"originations\".\"month\") AS date) AS \"month\", "
                    + "\"Plans\".\"name\" AS \"Plans__name\", SUM(\"origination_mart\".\"originations\".\"n\") AS \"sum\" "
                    + "FROM \"origination_mart\".\"originations\" LEFT JOIN \"origination_mart\".\"plans\" AS \"Plans\" "
                    + "ON \"origination_mart\".\"originations\".\"plan_id\" = \"Plans\".\"id\" "
                    + "WHERE (\"origination_mart\".\"originations\".\"month\" >= ?) AND (\"origination_mart\".\"originations\".\"month\" < ?) "
                    + "GROUP BY CAST(DATE_TRUNC('month', \"origination_mart\".\"originations\".\"month\") AS date), \"Plans\".\"name\" "
                    + "ORDER BY CAST(DATE_TRUNC('month', \"origination_mart\".\"originations\".\"month\") AS date) ASC, \"Plans\".\"name\" ASC LIMIT 2000",
                    MAR1, AUG1);
                allowed(L + "MBQL on the view origination_mart.by_region: direct answer", c,
                    directQuery("SELECT region, n FROM origination_mart.by_region ORDER BY region"),
                    mbql(u, "orig-view") + "SELECT \"origination_mart\".\"by_region\".\"region\" AS \"region\", \"origination_mart\".\"by_region\".\"n\" AS \"n\" "
                    + "FROM \"origination_mart\".\"by_region\" ORDER BY \"origination_mart\".\"by_region\".\"region\" ASC LIMIT 2000");
                allowed(L + "MBQL on the materialized view origination_mart.monthly: direct answer", c,
                    directQuery("SELECT month, n FROM origination_mart.monthly WHERE month >= ? ORDER BY month", AUG1),
                    mbql(u, "orig-matview") + "SELECT \"origination_mart\".\"monthly\".\"month\" AS \"month\", \"origination_mart\".\"monthly\".\"n\" AS \"n\" "
                    + "FROM \"origination_mart\".\"monthly\" WHERE \"origination_mart\".\"monthly\".\"month\" >= ? "
                    + "ORDER BY \"origination_mart\".\"monthly\".\"month\" ASC LIMIT 2000", AUG1);
                // 3. the funnel: squad-origination-funnel's row filter (region claim north)
                allowed(L + "MBQL on funnel_data_mart.funnel: only origination's rows or region north", c,
                    directQuery("SELECT region, sum(leads) FROM funnel_data_mart.funnel WHERE (squad = 'origination' OR region = 'north') "
                                + "AND day >= ? AND day < ? GROUP BY region ORDER BY region", OCT5, OCT20),
                    mbql(u, "orig-funnel") + "SELECT \"funnel_data_mart\".\"funnel\".\"region\" AS \"region\", SUM(\"funnel_data_mart\".\"funnel\".\"leads\") AS \"sum\" "
                    + "FROM \"funnel_data_mart\".\"funnel\" WHERE (\"funnel_data_mart\".\"funnel\".\"day\" >= ?) AND (\"funnel_data_mart\".\"funnel\".\"day\" < ?) "
                    + "GROUP BY \"funnel_data_mart\".\"funnel\".\"region\" ORDER BY \"funnel_data_mart\".\"funnel\".\"region\" ASC LIMIT 2000",
                    OCT5, OCT20);
                // 4. shared_mart.customers, as Metabase's "view table" compiles it from the synced fields
                List<String> cols = syncedColumns(c, "shared_mart", "customers");
                List<String> masked = new ArrayList<>(ORIGINATION_CUSTOMER_MASKS.keySet());
                allowed(L + "MBQL view of shared_mart.customers built from its synced fields: masked values", c,
                    directQuery("SELECT " + String.join(", ", ORIGINATION_CUSTOMER_MASKS.values()) + " FROM shared_mart.customers ORDER BY id"),
                    viewTableSql(u, "orig-customers", "shared_mart", "customers", cols, "id"));
                allowed(L + "MBQL filter on a hashed column matches the hash, not the e-mail", c, List.of(),
                    mbql(u, "orig-customers-filter") + "SELECT \"shared_mart\".\"customers\".\"id\" AS \"id\" FROM \"shared_mart\".\"customers\" "
                    + "WHERE \"shared_mart\".\"customers\".\"email\" = ? LIMIT 2000", "ann@example.com");
                try {
                    List<String> got = mbQuery(c, mbql(u, "orig-salary") + "SELECT \"shared_mart\".\"customers\".\"salary\" AS \"salary\" "
                                                  + "FROM \"shared_mart\".\"customers\" LIMIT 2000");
                    notOk(L + "MBQL naming the denied column salary fails", "allowed: " + got);
                } catch (SQLException e) {
                    check(L + "MBQL naming the denied column salary fails", "42501".equals(e.getSQLState()) || "42703".equals(e.getSQLState()),
                          describe(e));
                }
                // 5. other datasets
                denied(L + "MBQL on sales_mart.sales_per_region denied", c,
                    mbql(u, "orig-denied-sales") + "SELECT \"sales_mart\".\"sales_per_region\".\"region\" AS \"region\", "
                    + "SUM(\"sales_mart\".\"sales_per_region\".\"amount\") AS \"sum\" FROM \"sales_mart\".\"sales_per_region\" "
                    + "WHERE \"sales_mart\".\"sales_per_region\".\"region\" = ? GROUP BY \"sales_mart\".\"sales_per_region\".\"region\" "
                    + "ORDER BY \"sales_mart\".\"sales_per_region\".\"region\" ASC LIMIT 2000", "north");
                denied(L + "MBQL on raw.leads denied", c,
                    mbql(u, "orig-denied-raw") + "SELECT \"raw\".\"leads\".\"email\" AS \"email\" FROM \"raw\".\"leads\" LIMIT 2000");
                check(L + "the session still answers after denials", "1".equals(one(c, "select 1")), "no");
                // 6. native queries (a plain Statement), and one with a template variable (a parameter)
                allowed(L + "native query: direct answer", c,
                    directQuery("select region, sum(n) from origination_mart.originations group by region order by region"),
                    nativeRemark(u, "orig-native") + "select region, sum(n) as total\nfrom origination_mart.originations\ngroup by region\norder by region");
                allowed(L + "native query with a template variable: direct answer", c,
                    directQuery("select count(*) from origination_mart.originations where region = 'south'"),
                    nativeRemark(u, "orig-native-param") + "select count(*) from origination_mart.originations where region = ?", "south");
                denied(L + "native query reaching raw through a CTE denied", c,
                    nativeRemark(u, "orig-native-denied") + "with l as (select * from raw.leads) select count(*) from l");
                // 7. setMaxRows without a cursor (Execute with a row limit)
                try {
                    List<String> got = mbQuery(c, 5, mbql(u, "orig-maxrows") + "SELECT \"origination_mart\".\"originations\".\"id\" AS \"id\" "
                                                  + "FROM \"origination_mart\".\"originations\" ORDER BY \"origination_mart\".\"originations\".\"id\" ASC LIMIT 2000");
                    sameList(L + "setMaxRows(5): the first 5 rows", directQuery("select id from origination_mart.originations order by id limit 5"), got);
                } catch (SQLException e) { notOk(L + "setMaxRows(5): the first 5 rows", describe(e)); }
                // 8. a sync-time query (field values) carries a remark without a user id
                allowed(L + "field-values query (remark without userID): direct answer", c,
                    directQuery("select distinct region from origination_mart.originations order by region"),
                    "-- Metabase queryType: MBQL queryHash: " + hash("orig-fieldvalues") + "\n"
                    + "SELECT \"origination_mart\".\"originations\".\"region\" AS \"region\" FROM \"origination_mart\".\"originations\" "
                    + "GROUP BY \"origination_mart\".\"originations\".\"region\" ORDER BY \"origination_mart\".\"originations\".\"region\" ASC LIMIT 1000");
            }
        });
        // cursor-based fetch: fetch size with auto-commit off (Execute with a row count, PortalSuspended)
        test(L + "cursor-based fetch", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                c.setAutoCommit(false);
                try (PreparedStatement ps = c.prepareStatement(mbql(u, "orig-cursor") + "SELECT \"origination_mart\".\"originations\".\"id\" AS \"id\", "
                        + "\"origination_mart\".\"originations\".\"region\" AS \"region\", \"origination_mart\".\"originations\".\"n\" AS \"n\" "
                        + "FROM \"origination_mart\".\"originations\" WHERE \"origination_mart\".\"originations\".\"n\" >= ? "
                        + "ORDER BY \"origination_mart\".\"originations\".\"id\" ASC LIMIT 2000")) {
                    ps.setFetchSize(7);
                    ps.setInt(1, 0);
                    List<String> got; try (ResultSet r = ps.executeQuery()) { got = rows(r); }
                    sameList(L + "fetch size 7, auto-commit off: every row in order",
                             directQuery("select id, region, n from origination_mart.originations where n >= 0 order by id"), got);
                }
                try (Statement s = c.createStatement()) {
                    s.setFetchSize(10);
                    List<String> got; try (ResultSet r = s.executeQuery(nativeRemark(u, "orig-cursor-funnel")
                            + "select day, squad, region, leads from funnel_data_mart.funnel order by day, squad, region")) { got = rows(r); }
                    List<String> exp = directQuery("select day, squad, region, leads from funnel_data_mart.funnel "
                                                   + "where squad = 'origination' or region = 'north' order by day, squad, region");
                    check(L + "fetch size 10 over the row-filtered funnel: the filtered rows (" + exp.size() + ")",
                          exp.equals(got) && exp.size() > 20, diff(exp, got));
                }
                c.commit();
                c.setAutoCommit(true);
            }
        });
        // read-only: pgjdbc's readOnlyMode=transaction (default) gives BEGIN READ ONLY when
        // auto-commit is off; readOnlyMode=always sends SET SESSION CHARACTERISTICS AS
        // TRANSACTION READ ONLY
        test(L + "read-only (BEGIN READ ONLY)", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                c.setAutoCommit(false);
                check(L + "read-only, auto-commit off: transaction_read_only on", "on".equals(one(c, "show transaction_read_only")),
                      one(c, "show transaction_read_only"));
                allowed(L + "read-only transaction: MBQL answers", c, directQuery(ORIG_COUNT_DIRECT, 3), mbql(u, "orig-ro") + ORIG_COUNT, 3);
                denied(L + "read-only transaction: a denied query is 42501", c,
                       mbql(u, "orig-ro-denied") + "SELECT \"sales_mart\".\"orders\".\"id\" AS \"id\" FROM \"sales_mart\".\"orders\" LIMIT 2000");
                try { one(c, "select 1"); notOk(L + "after a denial the transaction is failed (25P02)", "select 1 answered"); }
                catch (SQLException e) { check(L + "after a denial the transaction is failed (25P02)", "25P02".equals(e.getSQLState()), describe(e)); }
                c.rollback();
                check(L + "rollback recovers the read-only session", "1".equals(one(c, "select 1")), "no");
                c.commit();
            }
        });
        test(L + "read-only (SET SESSION CHARACTERISTICS)", () -> {
            try (Connection c = connect(p, Map.of("readOnlyMode", "always"))) {
                checkout(c, null);
                check(L + "readOnlyMode=always: SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY accepted",
                      "on".equals(one(c, "show transaction_read_only")) && "on".equals(one(c, "show default_transaction_read_only")),
                      one(c, "show default_transaction_read_only"));
                allowed(L + "readOnlyMode=always: MBQL answers", c, directQuery(ORIG_COUNT_DIRECT, 3), mbql(u, "orig-ro2") + ORIG_COUNT, 3);
            }
        });
        // the "additional options" Metabase's UI suggests: prepareThreshold=0
        test(L + "prepareThreshold=0", () -> {
            try (Connection c = connect(p, Map.of("prepareThreshold", "0", "defaultRowFetchSize", "500"))) {
                checkout(c, null);
                List<String> exp = directQuery(ORIG_COUNT_DIRECT, 4);
                boolean right = true;
                for (int i = 0; i < 6; i++) right &= exp.equals(mbQuery(c, mbql(u, "orig-pt0") + ORIG_COUNT, 4));
                check(L + "additional options prepareThreshold=0&defaultRowFetchSize=500: MBQL answers (6 executions)", right, "wrong rows");
            }
        });
    }

    static void salesQueries(Persona p) {
        String L = p.label + ": ";
        int u = p.metabaseUser;
        test(L + "queries", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                allowed(L + "MBQL with an enum parameter (CAST(? AS \"sales_mart\".\"order_status\")): direct answer", c,
                    directQuery("select region, sum(amount) from sales_mart.orders where status = 'paid' group by region order by region"),
                    mbql(u, "sales-enum") + "SELECT \"sales_mart\".\"orders\".\"region\" AS \"region\", SUM(\"sales_mart\".\"orders\".\"amount\") AS \"sum\" "
                    + "FROM \"sales_mart\".\"orders\" WHERE \"sales_mart\".\"orders\".\"status\" = CAST(? AS \"sales_mart\".\"order_status\") "
                    + "GROUP BY \"sales_mart\".\"orders\".\"region\" ORDER BY \"sales_mart\".\"orders\".\"region\" ASC LIMIT 2000", "paid");
                allowed(L + "MBQL joining orders to shared_mart.customers (unmasked for sales): direct answer", c,
                    directQuery("select c.email, count(*) from sales_mart.orders o left join shared_mart.customers c on o.customer_id = c.id "
                                + "group by c.email order by c.email"),
                    mbql(u, "sales-join") + "SELECT \"Customers\".\"email\" AS \"Customers__email\", COUNT(*) AS \"count\" FROM \"sales_mart\".\"orders\" "
                    + "LEFT JOIN \"shared_mart\".\"customers\" AS \"Customers\" ON \"sales_mart\".\"orders\".\"customer_id\" = \"Customers\".\"id\" "
                    + "GROUP BY \"Customers\".\"email\" ORDER BY \"Customers\".\"email\" ASC LIMIT 2000");
                allowed(L + "MBQL on funnel_data_mart.leads: only the user's own leads of its teams", c,
                    directQuery("select stage, count(*) from funnel_data_mart.leads where owner_email = 'sam' and team = 'squad-sales' "
                                + "group by stage order by 2 desc, 1"),
                    mbql(u, "sales-leads") + "SELECT \"funnel_data_mart\".\"leads\".\"stage\" AS \"stage\", COUNT(*) AS \"count\" "
                    + "FROM \"funnel_data_mart\".\"leads\" GROUP BY \"funnel_data_mart\".\"leads\".\"stage\" "
                    + "ORDER BY \"count\" DESC, \"funnel_data_mart\".\"leads\".\"stage\" ASC LIMIT 2000");
                denied(L + "MBQL on funnel_data_mart.funnel denied", c,
                    mbql(u, "sales-denied-funnel") + "SELECT COUNT(*) AS \"count\" FROM \"funnel_data_mart\".\"funnel\" LIMIT 2000");
                denied(L + "MBQL on origination_mart.originations denied", c, mbql(u, "sales-denied-orig") + ORIG_COUNT, 0);
                allowed(L + "native query: direct answer", c,
                    directQuery("select region, amount from sales_mart.sales_per_region order by region"),
                    nativeRemark(u, "sales-native") + "select region, amount from sales_mart.sales_per_region order by region");
            }
        });
    }

    static void nobodyQueries(Persona p) {
        String L = p.label + ": ";
        int u = p.metabaseUser;
        test(L + "queries", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                allowed(L + "MBQL on shared_mart.calendar: direct answer", c,
                    directQuery("select is_weekend, count(*) from shared_mart.calendar group by 1 order by 1"),
                    mbql(u, "nobody-calendar") + "SELECT \"shared_mart\".\"calendar\".\"is_weekend\" AS \"is_weekend\", COUNT(*) AS \"count\" "
                    + "FROM \"shared_mart\".\"calendar\" GROUP BY \"shared_mart\".\"calendar\".\"is_weekend\" "
                    + "ORDER BY \"shared_mart\".\"calendar\".\"is_weekend\" ASC LIMIT 2000");
                List<String> cols = syncedColumns(c, "shared_mart", "customers");
                allowed(L + "MBQL view of shared_mart.customers (everyone-shared: no masks): direct answer", c,
                    directQuery("select id, email, cpf, phone, birth_date, salary, name from shared_mart.customers order by id"),
                    viewTableSql(u, "nobody-customers", "shared_mart", "customers", cols, "id"));
                denied(L + "MBQL on origination_mart.originations denied", c, mbql(u, "nobody-denied-orig") + ORIG_COUNT, 0);
                denied(L + "MBQL on sales_mart.orders denied", c,
                    mbql(u, "nobody-denied-sales") + "SELECT \"sales_mart\".\"orders\".\"id\" AS \"id\" FROM \"sales_mart\".\"orders\" LIMIT 2000");
                denied(L + "MBQL on funnel_data_mart.leads denied", c,
                    mbql(u, "nobody-denied-funnel") + "SELECT COUNT(*) AS \"count\" FROM \"funnel_data_mart\".\"leads\" LIMIT 2000");
                denied(L + "SET ROLE by a non-impersonator denied", c, "SET ROLE metabase_origination;");
            }
        });
    }

    static void dataTeamQueries(Persona p) {
        String L = p.label + ": ";
        int u = p.metabaseUser;
        test(L + "queries", () -> {
            try (Connection c = connect(p, null)) {
                checkout(c, null);
                allowed(L + "MBQL joining raw.contracts to raw.leads: direct answer", c,
                    directQuery("select l.region, sum(c.amount) from raw.contracts c left join raw.leads l on c.lead_id = l.id "
                                + "where c.signed_at >= ? group by l.region order by l.region", java.sql.Timestamp.valueOf("2026-10-02 00:00:00")),
                    mbql(u, p.label + "-raw-join") + "SELECT \"Leads\".\"region\" AS \"Leads__region\", SUM(\"raw\".\"contracts\".\"amount\") AS \"sum\" "
                    + "FROM \"raw\".\"contracts\" LEFT JOIN \"raw\".\"leads\" AS \"Leads\" ON \"raw\".\"contracts\".\"lead_id\" = \"Leads\".\"id\" "
                    + "WHERE \"raw\".\"contracts\".\"signed_at\" >= ? GROUP BY \"Leads\".\"region\" ORDER BY \"Leads\".\"region\" ASC LIMIT 2000",
                    java.sql.Timestamp.valueOf("2026-10-02 00:00:00"));
                allowed(L + "MBQL on staging.contracts: direct answer", c,
                    directQuery("select plan, count(*) from staging.contracts group by plan order by plan"),
                    mbql(u, p.label + "-staging") + "SELECT \"staging\".\"contracts\".\"plan\" AS \"plan\", COUNT(*) AS \"count\" FROM \"staging\".\"contracts\" "
                    + "GROUP BY \"staging\".\"contracts\".\"plan\" ORDER BY \"staging\".\"contracts\".\"plan\" ASC LIMIT 2000");
                allowed(L + "MBQL on the whole funnel (no row filter): direct answer", c,
                    directQuery("select squad, sum(leads) from funnel_data_mart.funnel group by squad order by squad"),
                    mbql(u, p.label + "-funnel") + "SELECT \"funnel_data_mart\".\"funnel\".\"squad\" AS \"squad\", SUM(\"funnel_data_mart\".\"funnel\".\"leads\") AS \"sum\" "
                    + "FROM \"funnel_data_mart\".\"funnel\" GROUP BY \"funnel_data_mart\".\"funnel\".\"squad\" "
                    + "ORDER BY \"funnel_data_mart\".\"funnel\".\"squad\" ASC LIMIT 2000");
                allowed(L + "MBQL on origination_mart: direct answer", c,
                    directQuery(ORIG_COUNT_DIRECT, 2), mbql(u, p.label + "-orig") + ORIG_COUNT, 2);
                if (p == SCIENTIST)
                    denied(L + "MBQL on raw.credentials denied (data-scientists-no-secrets)", c,
                        mbql(u, "scientist-denied-credentials") + "SELECT \"raw\".\"credentials\".\"secret\" AS \"secret\" FROM \"raw\".\"credentials\" LIMIT 2000");
                else
                    allowed(L + "MBQL on raw.credentials: direct answer", c,
                        directQuery("select id, secret from raw.credentials order by id"),
                        mbql(u, "engineer-credentials") + "SELECT \"raw\".\"credentials\".\"id\" AS \"id\", \"raw\".\"credentials\".\"secret\" AS \"secret\" "
                        + "FROM \"raw\".\"credentials\" ORDER BY \"raw\".\"credentials\".\"id\" ASC LIMIT 2000");
            }
        });
        if (p == ENGINEER) {
            // Metabase's connection is read-only: a write the policy allows still cannot happen
            test(L + "read-only write", () -> {
                try (Connection c = connect(p, null)) {
                    checkout(c, null);
                    c.setAutoCommit(false);   // BEGIN READ ONLY
                    try (Statement s = c.createStatement()) {
                        s.executeUpdate("insert into raw.credentials values (99, 'x')");
                        notOk(L + "write in a read-only transaction fails with 25006", "the insert succeeded");
                    } catch (SQLException e) {
                        check(L + "write in a read-only transaction fails with 25006", "25006".equals(e.getSQLState()), describe(e));
                    }
                    c.rollback();
                }
            });
        }
    }

    // ------------------------------------------------------------ 5: impersonation
    static void impersonation() {
        Persona p = SERVICE;
        String L = "impersonation: ";
        int u = p.metabaseUser;
        test(L + "SET ROLE", () -> {
            try (Connection c = connect(p, null)) {
                // each query checks a connection out, which sets the role again
                try { checkout(c, "metabase_origination"); ok(L + "SET ROLE metabase_origination; by metabase-svc accepted"); }
                catch (SQLException e) { notOk(L + "SET ROLE metabase_origination; by metabase-svc accepted", describe(e)); }
                List<String> exp = directQuery(ORIG_COUNT_DIRECT, 3);
                boolean right = true; String bad = "";
                for (int i = 0; i < 6; i++) {
                    try { checkout(c, "metabase_origination"); List<String> got = mbQuery(c, mbql(u, "imp-orig") + ORIG_COUNT, 3);
                          if (!exp.equals(got)) { right = false; bad = diff(exp, got); } }
                    catch (SQLException e) { right = false; bad = describe(e); }
                }
                check(L + "as metabase_origination: MBQL on origination_mart answers (6 checkouts, SET ROLE each time)", right, bad);
                List<String> ns = new ArrayList<>();
                try (PreparedStatement ps = c.prepareStatement("select nspname from pg_catalog.pg_namespace where nspname !~ '^pg_' "
                                                               + "and nspname <> 'information_schema' order by 1");
                     ResultSet r = ps.executeQuery()) { while (r.next()) ns.add(r.getString(1)); }
                sameList(L + "as metabase_origination: pg_namespace shows squad-origination's schemas", new ArrayList<>(ORIGINATION.schemas()), ns);
                List<String> cols = syncedColumns(c, "shared_mart", "customers");
                allowed(L + "as metabase_origination: shared_mart.customers masked", c,
                    directQuery("SELECT " + String.join(", ", ORIGINATION_CUSTOMER_MASKS.values()) + " FROM shared_mart.customers ORDER BY id"),
                    viewTableSql(u, "imp-customers", "shared_mart", "customers", cols, "id"));
                denied(L + "as metabase_origination: raw.leads denied", c,
                    mbql(u, "imp-denied-raw") + "SELECT \"raw\".\"leads\".\"email\" AS \"email\" FROM \"raw\".\"leads\" LIMIT 2000");
                denied(L + "as metabase_origination: sales_mart denied", c,
                    mbql(u, "imp-denied-sales") + "SELECT \"sales_mart\".\"orders\".\"id\" AS \"id\" FROM \"sales_mart\".\"orders\" LIMIT 2000");
                denied(L + "as metabase_origination: the funnel's region filter has no claim to use (fail closed)", c,
                    mbql(u, "imp-funnel") + "SELECT COUNT(*) AS \"count\" FROM \"funnel_data_mart\".\"funnel\" LIMIT 2000");

                // back to the connection's own principal (a user without impersonation)
                try { checkout(c, "NONE"); ok(L + "SET ROLE NONE; accepted"); }
                catch (SQLException e) { notOk(L + "SET ROLE NONE; accepted", describe(e)); }
                denied(L + "after SET ROLE NONE: origination_mart denied again", c, mbql(u, "imp-after-none") + ORIG_COUNT, 3);
                allowed(L + "after SET ROLE NONE: the service account's own shared data", c,
                    directQuery("select count(*) from shared_mart.calendar"),
                    mbql(u, "imp-after-none-shared") + "SELECT COUNT(*) AS \"count\" FROM \"shared_mart\".\"calendar\" LIMIT 2000");

                // another mapped role
                try {
                    checkout(c, "metabase_sales");
                    allowed(L + "as metabase_sales: sales_mart answers", c,
                        directQuery("select region, amount from sales_mart.sales_per_region order by region"),
                        mbql(u, "imp-sales") + "SELECT \"sales_mart\".\"sales_per_region\".\"region\" AS \"region\", "
                        + "\"sales_mart\".\"sales_per_region\".\"amount\" AS \"amount\" FROM \"sales_mart\".\"sales_per_region\" "
                        + "ORDER BY \"sales_mart\".\"sales_per_region\".\"region\" ASC LIMIT 2000");
                    denied(L + "as metabase_sales: origination_mart denied", c, mbql(u, "imp-sales-denied") + ORIG_COUNT, 3);
                } catch (SQLException e) { notOk(L + "SET ROLE metabase_sales;", describe(e)); }
                checkout(c, "NONE");
                // roles the policy does not map, and warehouse roles
                for (String role : new String[]{"metabase-admin", "pgadmin", "martgate_svc"}) {
                    try { setRole(c, role); notOk(L + "SET ROLE to unmapped role " + role + " denied", "accepted"); }
                    catch (SQLException e) { check(L + "SET ROLE to unmapped role " + role + " denied", "42501".equals(e.getSQLState()), describe(e)); }
                }
                denied(L + "after refused SET ROLEs: still its own principal", c, mbql(u, "imp-after-refused") + ORIG_COUNT, 3);
            }
        });
        // a non-impersonator's SET ROLE, through Metabase's checkout
        for (Persona q : new Persona[]{ORIGINATION, ENGINEER}) {
            test(q.label + ": SET ROLE", () -> {
                try (Connection c = connect(q, null)) {
                    try { checkout(c, "metabase_sales"); notOk(q.label + ": SET ROLE metabase_sales; by a non-impersonator denied", "accepted"); }
                    catch (SQLException e) { check(q.label + ": SET ROLE metabase_sales; by a non-impersonator denied", "42501".equals(e.getSQLState()), describe(e)); }
                    if (q == ORIGINATION)
                        denied(q.label + ": after its refused SET ROLE, sales_mart still denied", c,
                               mbql(q.metabaseUser, "orig-after-refused-role") + "SELECT \"sales_mart\".\"orders\".\"id\" AS \"id\" FROM \"sales_mart\".\"orders\" LIMIT 2000");
                }
            });
        }
    }

    public static void main(String[] args) throws Exception {
        DriverManager.setLoginTimeout(15);
        try {
            direct = directConnect(null);
        } catch (SQLException e) {
            notOk("direct connection to the warehouse", describe(e));
            System.out.println("# metabase: " + (n - failed) + " passed, " + failed + " failed");
            System.exit(1);
        }
        Persona[] personas = {ENGINEER, SCIENTIST, ORIGINATION, SALES, NOBODY};
        for (Persona p : personas) {
            connectionChecks(p);
            metadataSync(p);
            metabaseCatalogQueries(p);
        }
        dataTeamQueries(ENGINEER);
        dataTeamQueries(SCIENTIST);
        originationQueries(ORIGINATION);
        salesQueries(SALES);
        nobodyQueries(NOBODY);
        impersonation();
        direct.close();
        System.out.println("# metabase: " + (n - failed) + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}

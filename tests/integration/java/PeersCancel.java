// pgjdbc's Statement.cancel() through a load balancer in front of several
// martgate instances (tests/integration/t_peers.sh): each round opens a
// connection, runs select pg_sleep(30) and cancels it from another thread
// 700 ms later; pgjdbc sends the CancelRequest on a new connection, which the
// balancer may take to another instance. Every other round opens one more
// connection first, so that a round-robin balancer puts the sessions on
// alternate instances.
//
// Configuration from the environment:
//   JT_HOST JT_PORT JT_DB JT_USER JT_PASSWORD JT_CA JT_ROUNDS (10)
// Prints "ok N - name" / "not ok N - name | why" per check, and one line
// "CANCEL_MS <round> <ms>" per round: the time from cancel() to the error.
import java.sql.*;
import java.util.*;
import java.util.concurrent.*;

public class PeersCancel {
    static int n = 0;

    static String env(String k, String d) { String v = System.getenv(k); return v == null ? d : v; }
    static void check(String name, boolean cond, Object why) {
        n++;
        if (cond) System.out.println("ok " + n + " - " + name);
        else System.out.println("not ok " + n + " - " + name + " | " + String.valueOf(why).replace('\n', ' '));
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + env("JT_HOST", "127.0.0.1") + ":" + env("JT_PORT", "5432") + "/" + env("JT_DB", "postgres");
        Properties p = new Properties();
        p.setProperty("user", env("JT_USER", "postgres"));
        p.setProperty("password", env("JT_PASSWORD", ""));
        p.setProperty("sslmode", "verify-full");
        p.setProperty("sslrootcert", env("JT_CA", ""));
        p.setProperty("connectTimeout", "10");
        p.setProperty("socketTimeout", "60");
        p.setProperty("ApplicationName", "peers-cancel");
        DriverManager.setLoginTimeout(15);
        int rounds = Integer.parseInt(env("JT_ROUNDS", "10"));
        ExecutorService ex = Executors.newSingleThreadExecutor();
        for (int i = 1; i <= rounds; i++) {
            String name = "pgjdbc round " + i;
            try {
                if (i % 2 == 0)
                    DriverManager.getConnection(url, p).close();   // shifts the round robin by one
                try (Connection c = DriverManager.getConnection(url, p); Statement s = c.createStatement()) {
                    long[] cancelledAt = new long[1];
                    Future<?> f = ex.submit(() -> {
                        try { Thread.sleep(700); cancelledAt[0] = System.nanoTime(); s.cancel(); }
                        catch (Exception e) { throw new RuntimeException(e); }
                    });
                    SQLException err = null;
                    try { s.executeQuery("select pg_sleep(30)"); } catch (SQLException e) { err = e; }
                    long ms = (System.nanoTime() - cancelledAt[0]) / 1_000_000;
                    f.get(5, TimeUnit.SECONDS);
                    System.out.println("CANCEL_MS " + i + " " + ms);
                    check(name + ": Statement.cancel() of pg_sleep(30) ends with 57014",
                          err != null && "57014".equals(err.getSQLState()),
                          err == null ? "no error" : err.getMessage() + " [" + err.getSQLState() + "]");
                    check(name + ": the error came " + ms + " ms after cancel() (<= 1000)", ms <= 1000, ms + " ms");
                    try (ResultSet r = s.executeQuery("select 'after'")) {
                        r.next();
                        check(name + ": the connection goes on after the cancel", "after".equals(r.getString(1)), r.getString(1));
                    }
                }
            } catch (Exception e) {
                check(name, false, "threw " + e);
            }
        }
        ex.shutdown();
        System.out.println("# peers-cancel: done");
    }
}

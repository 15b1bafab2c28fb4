// LoginProbe URL USER PASSWORD CA: one pgjdbc login with verify-full TLS;
// prints "connected" or "SQLSTATE xxxxx: message" (what a Metabase user sees).
import java.sql.*;
import java.util.Properties;

public class LoginProbe {
    public static void main(String[] a) {
        Properties p = new Properties();
        p.setProperty("user", a[1]);
        p.setProperty("password", a[2]);
        p.setProperty("sslmode", "verify-full");
        p.setProperty("sslrootcert", a[3]);
        p.setProperty("connectTimeout", "10");
        try (Connection c = DriverManager.getConnection(a[0], p)) {
            System.out.println("connected");
        } catch (SQLException e) {
            System.out.println("SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
        }
    }
}

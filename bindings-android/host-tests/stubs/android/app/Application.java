// Compile-time stand-in (see ../content/Context.java): the member ReproLine.kt uses (API 28+).
package android.app;

public class Application {
    public static String getProcessName() {
        throw new UnsupportedOperationException("stub");
    }
}

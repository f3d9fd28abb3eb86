// Compile-time stand-in for android.content.Context, so the host build type-checks
// ReproLine.kt (the only Android-dependent source) without the Android SDK. Only the members
// ReproLine.kt uses, with the framework's signatures. Never on the runtime classpath.
package android.content;

public abstract class Context {
    public abstract Context getApplicationContext();

    public abstract java.io.File getFilesDir();

    public abstract String getPackageName();
}

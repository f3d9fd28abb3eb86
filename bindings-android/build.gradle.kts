// The repro-line Android library: the generated UniFFI Kotlin (com.repro.line.ffi), the
// ReproLine facade (com.repro.line) and libreproline_ffi.so for each ABI, built by cargo-ndk.
// NOT BUILT on the machine that wrote it (no Android SDK there); see README.md. The same Kotlin
// sources are compiled and tested on the host JVM by scripts/mobile-test.sh.
//
// Needs: the Android NDK (ANDROID_NDK_HOME or sdk.dir/ndk), `cargo install cargo-ndk`, and
// `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`.
// -PreproLine.rustProfile=debug builds the Rust side without optimizations (faster, larger).

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

val repoRoot: File = projectDir.parentFile
val rustProfile: String = providers.gradleProperty("reproLine.rustProfile").getOrElse("release")
val rustJniLibs = layout.buildDirectory.dir("rustJniLibs")
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

android {
    namespace = "com.repro.line"
    compileSdk = 35

    defaultConfig {
        minSdk = 21
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    // Kotlin sources: src/main/kotlin (AGP default). Native libraries: built by cargoNdk below,
    // never checked in. AGP strips their debug symbols when packaging the app.
    sourceSets["main"].jniLibs.srcDir(rustJniLibs)
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The generated bindings call the Rust library through JNA (the AAR carries libjnidispatch.so per ABI).
    implementation("net.java.dev.jna:jna:5.17.0@aar")
}

// 16 KB pages (Google Play, Android 15+ targets): the same flags as .cargo/config.toml, set here
// too so a RUSTFLAGS from the environment cannot drop them. scripts/mobile-test.sh checks them.
val pageSizeFlags = "-C link-arg=-Wl,-z,max-page-size=16384 -C link-arg=-Wl,-z,common-page-size=16384"
val androidTriples = listOf("aarch64-linux-android", "armv7-linux-androideabi", "x86_64-linux-android")

// cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -o build/rustJniLibs build --profile mobile -p repro-line-ffi --lib
val cargoNdk by tasks.registering(Exec::class) {
    group = "build"
    description = "Builds libreproline_ffi.so for $abis with cargo-ndk"
    workingDir = repoRoot
    val args = mutableListOf("cargo", "ndk", "--platform", "21")
    abis.forEach { args += listOf("-t", it) }
    args += listOf("-o", rustJniLibs.get().asFile.absolutePath, "build", "-p", "repro-line-ffi", "--lib")
    // The mobile profile (root Cargo.toml): opt-level z, fat LTO, stripped, panic = unwind.
    if (rustProfile == "release") args += listOf("--profile", "mobile")
    commandLine(args)
    androidTriples.forEach { triple ->
        environment("CARGO_TARGET_${triple.uppercase().replace('-', '_')}_RUSTFLAGS", pageSizeFlags)
    }
    inputs.files(fileTree(repoRoot) {
        include("core/src/**", "core/Cargo.toml", "bindings-uniffi/src/**", "bindings-uniffi/Cargo.toml", "Cargo.lock", "Cargo.toml", ".cargo/config.toml")
    })
    inputs.property("rustProfile", rustProfile)
    outputs.dir(rustJniLibs)
}

tasks.named("preBuild") { dependsOn(cargoNdk) }

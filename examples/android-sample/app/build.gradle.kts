plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "com.repro.line.sample"
    compileSdk = 35

    defaultConfig {
        applicationId = "com.repro.line.sample"
        minSdk = 24 // LINE SDK for Android 5.x needs 24
        targetSdk = 35
        versionCode = 1
        versionName = "1.0"
        // Your LINE Login channel ID (LINE Developers Console → channel → Basic settings).
        buildConfigField("String", "LINE_CHANNEL_ID", "\"${providers.gradleProperty("lineChannelId").getOrElse("1234567890")}\"")
    }

    buildFeatures { buildConfig = true }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    implementation(project(":repro-line"))
    implementation("com.linecorp.linesdk:linesdk:5.11.1")
    implementation("androidx.activity:activity-ktx:1.9.3")
}

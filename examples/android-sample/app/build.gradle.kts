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
        // Two different channel IDs (both under the same LINE provider):
        // - the LINE Login channel ID, used only to log in with the LINE SDK
        //   (LINE Developers Console → your LINE Login channel → Basic settings);
        // - Repro's LINE channel ID, where Repro files the link (Repro's dashboard →
        //   Settings > LINE Settings > LINE Channel Settings: your Messaging API channel).
        buildConfigField("String", "LINE_LOGIN_CHANNEL_ID", "\"${providers.gradleProperty("lineLoginChannelId").getOrElse("1234567890")}\"")
        buildConfigField("String", "REPRO_LINE_CHANNEL_ID", "\"${providers.gradleProperty("reproLineChannelId").getOrElse("2000000000")}\"")
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

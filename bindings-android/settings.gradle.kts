// Standalone build of the repro-line Android library (`gradle :assembleRelease` from here).
// Apps can instead include this directory as a module:
//   include(":repro-line"); project(":repro-line").projectDir = file("path/to/repro-line/bindings-android")
// and provide the plugins in their own settings.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
    plugins {
        id("com.android.library") version "8.7.3"
        id("org.jetbrains.kotlin.android") version "2.1.0"
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "repro-line"

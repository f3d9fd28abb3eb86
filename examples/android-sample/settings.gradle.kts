// LINE Login → ReproLine.setLineUserId sample. Uses the SDK module from this repository.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
    plugins {
        id("com.android.application") version "8.7.3"
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

rootProject.name = "repro-line-android-sample"
include(":app")
include(":repro-line")
project(":repro-line").projectDir = file("../../bindings-android")

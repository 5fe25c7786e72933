// swift-tools-version:6.0
import Foundation
import PackageDescription

let package = Package(
    name: "lifecycled",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lifecycled", targets: ["lifecycled"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // librdkafka from the system (Debian: librdkafka-dev).
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // A tiny C++ shim over simdjson (Debian: libsimdjson-dev) with a C header for Swift.
        .target(
            name: "CSimdJSONBridge",
            linkerSettings: [.linkedLibrary("simdjson")]
        ),
        // Kafka over librdkafka: one owner per handle, rebalances and deliveries surfaced.
        .target(
            name: "LifecycleKafka",
            dependencies: ["CRdKafka", .product(name: "Logging", package: "swift-log")]
        ),
        // The pure engine: events and time in, triggers out. No dependencies, no I/O.
        .target(name: "LifecycleEngine"),
        // YAML rules -> validated engine rules, with FILE:LINE:COL diagnostics.
        .target(
            name: "LifecycleConfig",
            dependencies: ["LifecycleEngine", .product(name: "Yams", package: "Yams")]
        ),
        // JSON event decoding (simdjson) and trigger encoding.
        .target(name: "LifecycleCodec", dependencies: ["LifecycleEngine", "CSimdJSONBridge"]),
        // The daemon's parts around the engine: checkpoints, the Kafka pipeline.
        .target(
            name: "LifecycleDaemon",
            dependencies: [
                "LifecycleEngine", "LifecycleCodec", "LifecycleConfig", "LifecycleKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The read-only HTTP port (SwiftNIO): health, readiness, metrics, user and segment views,
        // the console page. The page is compiled in (`embedInCode`), not a resource bundle: a
        // copied binary keeps serving it.
        .target(
            name: "LifecycleHTTP",
            dependencies: [
                "LifecycleDaemon", "LifecycleEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("Console/console.html")]
        ),
        .executableTarget(
            name: "lifecycled",
            dependencies: [
                "LifecycleEngine", "LifecycleConfig", "LifecycleCodec", "LifecycleDaemon", "LifecycleHTTP", "LifecycleKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Engine throughput and memory-per-user benchmark (run in release, see BENCHMARKS.md).
        .executableTarget(
            name: "LifecycleBench",
            dependencies: [
                "LifecycleEngine", "LifecycleConfig", "LifecycleCodec", "LifecycleKafka", "LifecycleDaemon",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What the mock-cluster tests of several targets share (events in, replay per partition).
        .target(
            name: "LifecycleTestSupport",
            dependencies: ["LifecycleKafka", "LifecycleEngine", "LifecycleCodec", "LifecycleConfig", .product(name: "Logging", package: "swift-log")],
            path: "Tests/Support"
        ),
        .testTarget(name: "LifecycleEngineTests", dependencies: ["LifecycleEngine", "LifecycleConfig"]),
        .testTarget(name: "LifecycleConfigTests", dependencies: ["LifecycleConfig"]),
        .testTarget(name: "LifecycleCodecTests", dependencies: ["LifecycleCodec", "LifecycleConfig", "CSimdJSONBridge"]),
        .testTarget(name: "KafkaSystemLibraryTests", dependencies: ["CRdKafka"]),
        .testTarget(name: "KafkaIntegrationTests", dependencies: ["LifecycleKafka"]),
        .testTarget(
            name: "LifecycleDaemonTests",
            dependencies: [
                "LifecycleDaemon", "LifecycleKafka", "LifecycleConfig", "LifecycleCodec", "LifecycleEngine", "LifecycleTestSupport",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Runs the built `lifecycled` binary (scripts/test builds every product first).
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "LifecycleKafka", "LifecycleConfig", "LifecycleCodec", "LifecycleEngine", "LifecycleDaemon", "LifecycleHTTP",
                "LifecycleTestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["Fixtures"]
        ),
    ],
    cxxLanguageStandard: .cxx17
)

// libFuzzer harnesses (scripts/fuzz). libFuzzer supplies their `main`, so they link only
// when built with `-sanitize=fuzzer`: they are declared only when LIFECYCLED_FUZZ is set,
// and a plain `swift build` never sees them.
if ProcessInfo.processInfo.environment["LIFECYCLED_FUZZ"] != nil {
    let harnesses: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzEventDecoder", ["FuzzSupport", "LifecycleCodec", "LifecycleEngine", "CSimdJSONBridge"]),
        ("FuzzConfig", ["FuzzSupport", "LifecycleConfig"]),
        ("FuzzCondition", ["FuzzSupport", "LifecycleEngine"]),
    ]
    package.targets.append(.target(name: "FuzzSupport", path: "Tests/Fuzz/Harnesses/FuzzSupport"))
    package.targets += harnesses.map { harness in
        .executableTarget(
            name: harness.name, dependencies: harness.dependencies, path: "Tests/Fuzz/Harnesses/\(harness.name)",
            // No top-level code: the one file would otherwise be compiled as the program's main.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])])
    }
}

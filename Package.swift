// swift-tools-version: 6.2
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Baton",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "baton", targets: ["baton"]),
        .executable(name: "baton-bench", targets: ["baton-bench"]),
        .library(name: "BatonCore", targets: ["BatonCore"]),
        .library(name: "BatonKit", targets: ["BatonKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.86.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        .target(
            name: "BatonCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonStore",
            dependencies: [
                "BatonCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for reading a million feature rows without a copy per row.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // NIOThreadPool, for batch work on threads of its own (BatchWork).
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonFeatures",
            dependencies: ["BatonCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonWorker",
            dependencies: [
                "BatonCore", "BatonAPI",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonEngine",
            dependencies: [
                "BatonCore", "BatonStore", "BatonWorker", "BatonRegistry", "BatonFeatures", "BatonDeploy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonDeploy",
            dependencies: [
                "BatonCore", "BatonStore", "BatonRegistry", "BatonWorker", "BatonGateway",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonGateway",
            dependencies: [
                "BatonCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonRegistry",
            dependencies: ["BatonCore", "BatonStore"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonAPI",
            dependencies: ["BatonCore", "BatonStore"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonServer",
            dependencies: [
                "BatonCore", "BatonStore", "BatonEngine", "BatonAPI", "BatonRegistry", "BatonFeatures", "BatonDeploy", "BatonGateway",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            resources: [.copy("Resources/openapi.json"), .copy("Resources/ui")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonCLI",
            dependencies: [
                "BatonCore", "BatonStore", "BatonEngine", "BatonWorker", "BatonAPI", "BatonServer", "BatonRegistry", "BatonFeatures",
                "BatonDeploy", "BatonGateway",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BatonKit",
            dependencies: [
                "BatonCore", "BatonWorker", "BatonAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "baton", dependencies: [
                "BatonCLI", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),
        // A BatonKit worker for the tests that run Swift pipelines through the real binary.
        .executableTarget(
            name: "batonkit-test-worker", dependencies: ["BatonKit"], path: "Tests/BatonKitTestWorker",
            swiftSettings: strictSettings),
        .executableTarget(
            name: "baton-bench",
            dependencies: [
                "BatonCore", "BatonStore", "BatonEngine", "BatonWorker", "BatonFeatures", "BatonGateway", "BatonServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "BatonCoreTests", dependencies: ["BatonCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "BatonStoreTests",
            dependencies: [
                "BatonStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings),
        .testTarget(
            name: "BatonRegistryTests", dependencies: ["BatonRegistry", "BatonStore", "BatonCore"],
            swiftSettings: strictSettings),
        .testTarget(name: "BatonFeaturesTests", dependencies: ["BatonFeatures", "BatonCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "BatonDeployTests",
            dependencies: [
                "BatonDeploy", "BatonGateway", "BatonStore", "BatonRegistry", "BatonCore", "BatonWorker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            resources: [.copy("Resources/replica.py")],
            swiftSettings: strictSettings),
        .testTarget(
            name: "BatonGatewayTests",
            dependencies: [
                "BatonGateway",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),
        .testTarget(name: "BatonWorkerTests", dependencies: ["BatonWorker"], swiftSettings: strictSettings),
        .testTarget(name: "BatonEngineTests", dependencies: ["BatonEngine", "BatonFeatures"], swiftSettings: strictSettings),
        .testTarget(name: "BatonKitTests", dependencies: ["BatonKit", "BatonWorker"], swiftSettings: strictSettings),
        .testTarget(name: "BatonCLITests", dependencies: ["BatonCore", "BatonAPI"], swiftSettings: strictSettings),
        .testTarget(
            name: "BatonServerTests",
            dependencies: [
                "BatonServer", "BatonAPI", "BatonCore", "BatonEngine", "BatonStore", "BatonRegistry", "BatonDeploy", "BatonGateway",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),
    ]
)

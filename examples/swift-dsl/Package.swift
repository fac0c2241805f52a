// swift-tools-version: 6.2
import PackageDescription

// A worker for pipelines written in Swift. It depends on this repository's BatonKit by path;
// in a project of your own, depend on the Baton repository by URL instead.
let package = Package(
    name: "swift-dsl-example",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Baton", path: "../..")
    ],
    targets: [
        .executableTarget(
            name: "customer-worker",
            dependencies: [.product(name: "BatonKit", package: "Baton")],
            path: "Sources/CustomerWorker",
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)

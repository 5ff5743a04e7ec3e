// swift-tools-version:6.1
// Benchmarks live in their own package so that the main build and `swift test`
// never compile them. Run: scripts/bench (or swift run -c release trace-bench here).
import PackageDescription

let package = Package(
    name: "vfiotrace-benchmarks",
    dependencies: [.package(name: "vfiotrace", path: "..")],
    targets: [
        .target(name: "BenchSupport", swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .executableTarget(
            name: "trace-bench",
            dependencies: ["BenchSupport", .product(name: "Trace", package: "vfiotrace")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]
        ),
        .executableTarget(
            name: "engine-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "Trace", package: "vfiotrace"),
                .product(name: "Replay", package: "vfiotrace"),
            ],
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]
        ),
    ]
)

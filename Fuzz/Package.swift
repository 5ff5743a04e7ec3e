// swift-tools-version: 6.0
// The libFuzzer harnesses (scripts/fuzz builds and runs them). A package of
// its own because it is built with -sanitize=fuzzer,address, which would
// give every executable of the main package libFuzzer's driver.
import PackageDescription

let package = Package(
    name: "vfiotrace-fuzz",
    dependencies: [.package(name: "vfiotrace", path: "..")],
    targets: [
        .target(name: "CFuzz"),
        .executableTarget(
            name: "vfiotrace-fuzz",
            dependencies: [
                "CFuzz",
                .product(name: "Trace", package: "vfiotrace"),
                .product(name: "Replay", package: "vfiotrace"),
                .product(name: "Record", package: "vfiotrace"),
            ]
        ),
    ]
)

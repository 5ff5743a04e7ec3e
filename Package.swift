// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "vfiotrace",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vfiotrace", targets: ["vfiotrace"]),
        .library(name: "Trace", targets: ["Trace"]),
        .library(name: "Replay", targets: ["Replay"]),
        .library(name: "Conform", targets: ["Conform"]),
        .library(name: "Record", targets: ["Record"]),
        .library(name: "Differential", targets: ["Differential"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // libzstd from the system (Debian: libzstd-dev).
        .systemLibrary(
            name: "CZstd",
            path: "Sources/CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        // <linux/vfio.h> layouts and request numbers, plus fixed-signature
        // wrappers for the variadic calls Swift cannot make (ioctl).
        .target(name: "CVFIO", path: "Sources/CVFIO"),
        // CRC-32C with the CPU's instruction (SSE4.2, Armv8 CRC).
        .target(name: "CChecksum", path: "Sources/CChecksum"),
        .target(name: "Trace", dependencies: ["CZstd", "CChecksum"]),
        // ptrace, seccomp-bpf and process_vm_readv with fixed signatures.
        .target(name: "CRecord", path: "Sources/CRecord"),
        .target(name: "Record", dependencies: ["Trace", "CRecord", "CVFIO"]),
        .target(name: "Replay", dependencies: ["Trace", "CVFIO"]),
        .target(name: "Conform", dependencies: ["Replay", "Trace"]),
        // vfiotrace fuzz: random streams, a reference against the engine, shrinking.
        .target(name: "Differential", dependencies: ["Conform", "Replay", "Trace"]),
        // The HTML report (--html): divergences drawn as inline SVG.
        .target(name: "Report", dependencies: ["Conform", "Replay", "Trace"]),
        .executableTarget(
            name: "vfiotrace",
            dependencies: [
                "Trace", "Replay", "Conform", "Record", "Differential", "Report",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // A program whose non-leader thread execs while the leader spins:
        // the recorder's tests run it (Tests/CLITests, RecordExecTests).
        .executableTarget(name: "thread-exec-fixture", path: "Tests/Fixtures/ThreadExec"),
        // Helpers shared by the test modules (a seeded generator).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TraceTests", dependencies: ["Trace", "CVFIO", "TestSupport"],
                    resources: [.copy("Golden")]),
        .testTarget(name: "ReplayTests", dependencies: ["Replay", "Trace", "CVFIO", "TestSupport"]),
        .testTarget(name: "ConformTests", dependencies: ["Conform", "Replay", "Trace"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Conform", "Replay", "Trace", "TestSupport"]),
        .testTarget(name: "DifferentialTests", dependencies: ["Differential", "Conform", "Replay", "Trace"]),
        .testTarget(name: "CLITests", dependencies: ["Trace"], exclude: ["Snapshots"]),
        .testTarget(name: "RecordTests", dependencies: ["Record", "Trace", "TestSupport"]),
        // The real-kernel lane's verdicts, over what scripts/lab-lane's
        // guests left behind (skipped unless VFIOTRACE_LAB_OUT names it).
        .testTarget(name: "LabTests", dependencies: ["Conform", "Replay", "Trace"]),
    ]
)

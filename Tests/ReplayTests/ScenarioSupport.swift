import TestSupport
import Testing
import Trace
@testable import Replay

/// Replays scenario text on the engine and reports every divergence as a
/// test issue naming the event, so a failing rule reads like `vfiotrace
/// replay` output.
enum Scenario {
    /// An emulated-only (mdev) container on fd 3, group 20 on fd 4 with its
    /// device open on fd 5: pins and dma_rw work, nothing is all-dirty.
    static let emulated = """
    open /dev/vfio/vfio -> 3
    open /dev/vfio/20 -> 4
    group_set_container kind=emulated -> ok
    set_iommu TYPE1v2 -> ok
    group_get_device_fd name="mdev0" -> 5

    """

    /// A container on fd 3 with IOMMU-backed group 12 on fd 4 (vfio-pci).
    static let iommu = """
    open /dev/vfio/vfio -> 3
    open /dev/vfio/12 -> 4
    group_set_container kind=iommu -> ok
    set_iommu TYPE1v2 -> ok

    """

    static func events(_ text: String) throws -> [Event] {
        try TextParser.parse(text).1
    }

    /// Every step of replaying `text`.
    static func replay(_ text: String, profile: KernelProfile = .latest, host: HostModel = HostModel(),
                       options: ComparisonOptions = ComparisonOptions()) throws -> [ReplayStep] {
        var r = Replayer(backend: BitmapEngine(profile: profile, host: host), options: options)
        return try events(text).map { r.step($0) }
    }

    /// Replays `text` and records an issue for each divergent event.
    @discardableResult
    static func expectMatches(_ text: String, profile: KernelProfile = .latest, host: HostModel = HostModel(),
                              sourceLocation: SourceLocation = #_sourceLocation) throws -> [ReplayStep] {
        let steps = try replay(text, profile: profile, host: host)
        for s in steps where s.diverged {
            Issue.record("\(profile.name): \(s.expected.inputLine): \(s.differences.map(\.description).joined(separator: "; "))",
                         sourceLocation: sourceLocation)
        }
        return steps
    }
}


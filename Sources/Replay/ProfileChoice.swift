import Trace

/// What a `--profile` value asks for: one preset, `auto` (the preset a
/// trace's kernel release maps to), or `all` (every preset, for a
/// conformance matrix).
public enum ProfileChoice: Hashable, Sendable, CustomStringConvertible {
    case preset(KernelProfile)
    case auto
    case all

    public init?(name: String) {
        switch name {
        case "auto": self = .auto
        case "all": self = .all
        default:
            guard let p = KernelProfile.preset(named: name) else { return nil }
            self = .preset(p)
        }
    }

    /// Every name ``init(name:)`` accepts, presets oldest first.
    public static var names: [String] { KernelProfile.presets.map(\.name) + ["auto", "all"] }

    public var description: String {
        switch self {
        case .preset(let p): p.name
        case .auto: "auto"
        case .all: "all"
        }
    }

    /// The profile to replay a trace with `header` on, and why it was
    /// chosen (printed in the report's first line). `all` means every
    /// preset, which one replay cannot be: it resolves like `auto`.
    public func resolve(for header: TraceHeader) -> (profile: KernelProfile, reason: String) {
        if case .preset(let p) = self { return (p, "profile \(p.name)") }
        let release = TextSyntax.headerValue(header.kernelRelease)
        if header.kernelRelease.isEmpty { return (.latest, "no kernel release in the header: latest") }
        if let p = KernelProfile.forKernelRelease(header.kernelRelease) { return (p, "auto: kernel \(release)") }
        return (.latest, "auto: kernel \(release) not recognised, using latest")
    }

    /// The profiles a conformance run covers.
    public var profiles: [KernelProfile] {
        switch self {
        case .preset(let p): [p]
        case .auto: [.latest]
        case .all: KernelProfile.presets
        }
    }
}

/// A Linux kernel version, `major.minor.patch`, parsed from the release
/// strings traces carry: upstream (`6.12.0`, `6.12-rc3`, `v5.10`) and
/// Debian's (`6.1.0-56-amd64`, `6.12.117+deb12-amd64`, `5.10.0-32-amd64`).
/// Ordered by number, so `5.9 < 5.10 < 6.0`: profiles and catalogue
/// selectors compare kernels with it, never with decimals.
public struct KernelVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init(_ major: Int, _ minor: Int, _ patch: Int = 0) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// The leading `major.minor[.patch]` of a release string; nil when it
    /// does not start with one (after an optional `v`). What follows the
    /// numbers (`-rc3`, `-56-amd64`, `+deb12`) is ignored: Debian's ABI
    /// number is not an upstream version.
    public init?(release: String) {
        var s = Substring(release)
        if s.first == "v" { s = s.dropFirst() }
        var parts: [Int] = []
        var current = ""
        for c in s {
            if c.isASCII && c.isNumber {
                current.append(c)
                guard current.count <= 6 else { return nil }
            } else if c == "." && !current.isEmpty && parts.count < 2 {
                parts.append(Int(current)!)
                current = ""
            } else {
                break
            }
        }
        if !current.isEmpty { parts.append(Int(current)!) }
        guard parts.count >= 2 else { return nil }
        self.init(parts[0], parts[1], parts.count > 2 ? parts[2] : 0)
    }

    public static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }

    /// `6.1`, or `5.9.2` when the patch level matters.
    public var description: String { patch == 0 ? "\(major).\(minor)" : "\(major).\(minor).\(patch)" }
}

import Replay
import Trace

/// Which kernel profiles a rule scenario is written for: `all`, a preset
/// name list (`v16,5.8`), `X+` (X and newer), `X-` (X and older), or
/// `X..Y` (both inclusive), ordered by the kernel each profile stands for
/// (``KernelProfile/kernel``).
public struct ProfileSelector: Sendable, Equatable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) { self.text = text }

    public var description: String { text }

    /// The kernel a name in a selector stands for: a preset's kernel line
    /// (`v16` before 5.8), or a version (`5.9`); `latest` is newer than
    /// any version, since it is the newest source.
    static func rank(_ name: String) -> KernelVersion? {
        if name == "latest" { return KernelVersion(Int.max, 0) }
        if let p = KernelProfile.preset(named: name) { return p.kernel }
        guard name.first?.isNumber == true else { return nil }
        return KernelVersion(release: name)
    }

    /// Whether the selector is well formed.
    public var isValid: Bool {
        let t = text.trimmingSpaces
        if t.isEmpty { return false }
        if t == "all" { return true }
        if t.hasSuffix("+") || t.hasSuffix("-") { return Self.rank(String(t.dropLast())) != nil }
        if let (lo, hi) = Self.split(t) { return Self.rank(lo) != nil && Self.rank(hi) != nil }
        return t.split(separator: ",").allSatisfy { Self.rank(String($0).trimmingSpaces) != nil }
    }

    /// `X..Y` as (X, Y).
    static func split(_ t: String) -> (String, String)? {
        let c = Array(t)
        guard c.count > 2 else { return nil }
        for i in 1..<(c.count - 1) where c[i] == "." && c[i + 1] == "." {
            return (String(c[..<i]), String(c[(i + 2)...]))
        }
        return nil
    }

    public func matches(_ profile: KernelProfile) -> Bool {
        let t = text.trimmingSpaces
        if t == "all" { return true }
        let p = Self.rank(profile.name) ?? profile.kernel
        if t.hasSuffix("+"), let lo = Self.rank(String(t.dropLast())) { return p >= lo }
        if t.hasSuffix("-"), let hi = Self.rank(String(t.dropLast())) { return p <= hi }
        if let (a, b) = Self.split(t), let lo = Self.rank(a), let hi = Self.rank(b) { return p >= lo && p <= hi }
        return t.split(separator: ",").contains { String($0).trimmingSpaces == profile.name }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// One variant of a rule: the scenario that checks it on the profiles its
/// selector names.
public struct RuleScenario: Sendable {
    public let path: String
    public let profiles: ProfileSelector
    public let text: String
    /// The scenario opens an emulated (mdev) group: on real VFIO it needs
    /// the vfiotrace_pin test device.
    public let needsPinningDevice: Bool

    /// Where an outcome depends on the IOMMU under type1, not on type1, a
    /// rule names the host trait instead of a value; the runner puts in
    /// the target's: `{host:iova_pgsizes}` is the domain's page sizes
    /// (`vfio_iommu_type1_get_info` reports the IOMMU driver's
    /// `pgsize_bitmap`: 4K|2M|1G for VT-d on 6.x, every size from 4K on
    /// 5.10, rule `info.migration-cap`).
    public static let hostTraits: [(token: String, value: @Sendable (HostModel) -> String)] = [
        ("{host:iova_pgsizes}", { TextSyntax.hex($0.domainPgsizeBitmap) }),
    ]

    /// The scenario's text with the host traits of `host` in place.
    public func text(on host: HostModel) -> String {
        guard text.contains("{host:") else { return text }
        var t = text
        for (token, value) in Self.hostTraits { t = t.replacing(token, with: value(host)) }
        return t
    }
}

/// A named conformance rule: a stable ID, what it says, where the notes
/// state it, and one scenario per range of kernel behaviour.
public struct Rule: Sendable {
    public let id: String
    public let title: String
    public let refs: String
    public let scenarios: [RuleScenario]

    public init(id: String, title: String, refs: String, scenarios: [RuleScenario]) {
        (self.id, self.title, self.refs, self.scenarios) = (id, title, refs, scenarios)
    }

    /// The scenario for `profile`, or nil when the rule does not apply.
    public func scenario(for profile: KernelProfile) -> RuleScenario? {
        scenarios.first { $0.profiles.matches(profile) }
    }
}

/// The rule catalogue: every `*.vfs` in a directory whose header comments
/// name a rule (`# rule:`, `# title:`, `# refs:`, `# profiles:`). Several
/// files may carry one rule, for different profiles.
public struct Catalogue: Sendable {
    public let rules: [Rule]

    public struct LoadError: Error, CustomStringConvertible {
        public let path: String
        public let message: String
        public var description: String { "\(path): \(message)" }
    }

    /// Builds the catalogue from `(path, text)` pairs.
    public init(files: [(path: String, text: String)]) throws(LoadError) {
        var byID: [String: (title: String, refs: String, scenarios: [RuleScenario])] = [:]
        var order: [String] = []
        for (path, text) in files.sorted(by: { $0.path < $1.path }) {
            var fields: [String: String] = [:]
            for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
                guard line.hasPrefix("# ") else { break }
                let body = line.dropFirst(2)
                if let colon = body.firstIndex(of: ":") {
                    fields[String(body[..<colon])] = String(body[body.index(after: colon)...]).trimmingSpaces
                }
            }
            guard let id = fields["rule"], !id.isEmpty else {
                throw LoadError(path: path, message: "no '# rule: ID' header line")
            }
            guard let title = fields["title"], !title.isEmpty else {
                throw LoadError(path: path, message: "rule \(id) has no '# title:' line")
            }
            let selector = ProfileSelector(fields["profiles"] ?? "all")
            guard selector.isValid else {
                throw LoadError(path: path, message: "rule \(id): bad '# profiles: \(selector)' (all, NAME,NAME, X+, X-, X..Y)")
            }
            let scenario = RuleScenario(path: path, profiles: selector, text: text,
                                        needsPinningDevice: text.contains("kind=emulated"))
            if byID[id] == nil {
                order.append(id)
                byID[id] = (title, fields["refs"] ?? "", [])
            }
            byID[id]!.scenarios.append(scenario)
        }
        // The mission's three families first (size bounds, page-size
        // mismatch errors, repopulation after query), then the rest by ID.
        let first = ["size.", "pgsize.", "repop."]
        func key(_ id: String) -> (Int, String) { (first.firstIndex { id.hasPrefix($0) } ?? first.count, id) }
        rules = order.sorted { key($0) < key($1) }.map { id in
            let r = byID[id]!
            return Rule(id: id, title: r.title, refs: r.refs, scenarios: r.scenarios)
        }
    }

    /// Rules whose ID matches a glob (`*` and `?`), or all.
    public func select(_ glob: String?) -> [Rule] {
        guard let glob else { return rules }
        return rules.filter { Self.glob(glob, matches: $0.id) }
    }

    static func glob(_ pattern: String, matches s: String) -> Bool {
        let p = Array(pattern), t = Array(s)
        var memo: [Int: Bool] = [:]
        func m(_ i: Int, _ j: Int) -> Bool {
            let key = i * (t.count + 1) + j
            if let v = memo[key] { return v }
            let v: Bool
            if i == p.count { v = j == t.count }
            else if p[i] == "*" { v = m(i + 1, j) || (j < t.count && m(i, j + 1)) }
            else { v = j < t.count && (p[i] == "?" || p[i] == t[j]) && m(i + 1, j + 1) }
            memo[key] = v
            return v
        }
        return m(0, 0)
    }

    /// Shard `index` (1-based) of `count`: rules assigned round-robin in ID
    /// order, so shards are disjoint, cover everything and do not depend on
    /// the machine.
    public static func shard(_ rules: [Rule], index: Int, of count: Int) -> [Rule] {
        rules.enumerated().filter { $0.offset % count == index - 1 }.map(\.element)
    }
}

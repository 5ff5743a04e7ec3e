/// One of N parts of a rule list (`--shard I/N`, 1-based): the parts are
/// disjoint and together hold every rule once, whatever the machine, so a
/// CI matrix can spread a catalogue over jobs.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// `I/N` with 1 <= I <= N; nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 1, i <= n else { return nil }
        index = i
        count = n
    }

    public var description: String { "\(index)/\(count)" }

    /// This shard's rules: round-robin in catalogue order.
    public func select(_ rules: [Rule]) -> [Rule] {
        Catalogue.shard(rules, index: index, of: count)
    }
}

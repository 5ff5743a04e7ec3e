import Foundation
import Testing
import Trace
@testable import Conform
@testable import Replay

@Suite("Bisection, shards and finding the corpus")
struct BisectionTests {
    static func corpusEvents(_ name: String) throws -> [Event] {
        try EventInput.open(Shipped.root + "/corpora/" + name).readAll()
    }

    @Test("change points along the profiles: pinned-scope changes at 5.8 -> 5.10 (event 16: the dma_rw fix), not after (populate-on-detach is 5.10 stable's too)")
    func pinnedScope() throws {
        let events = try Self.corpusEvents("pinned-scope.vfs")
        let points = [KernelProfile.v5_8, .v5_10, .v5_12, .latest].map { Bisection.enginePoint(events, profile: $0) }
        let c = Bisection.compare(points, options: ComparisonOptions())
        #expect(c.map { "\($0.from)->\($0.to)" } == ["5.8->5.10", "5.10->5.12", "5.12->latest"])
        #expect(c[0].firstChange?.expected.seq == 16)
        #expect(c[1].firstChange == nil)
        #expect(c[2].firstChange == nil)
        // The 5.12 counter without the 5.10 stable backport's populate
        // differs at the detach: the switch alone makes that change.
        var vanilla = KernelProfile.v5_10
        vanilla.populateOnDetach = false
        let detach = Bisection.compare([Bisection.enginePoint(events, profile: vanilla), points[1]], options: ComparisonOptions())
        #expect(detach.first?.firstChange.map { $0.expected.seq > 16 } == true, "\(detach.first?.firstChange?.expected.inputLine ?? "no change")")
    }

    @Test("no change where the profiles agree; one point or none compares nothing")
    func noChange() throws {
        let events = try Self.corpusEvents("basic-tracking.vfs")
        let points = [KernelProfile.v5_10, .v5_12, .latest].map { Bisection.enginePoint(events, profile: $0) }
        #expect(Bisection.compare(points, options: ComparisonOptions()).allSatisfy { $0.firstChange == nil })
        #expect(Bisection.compare(Array(points.prefix(1)), options: ComparisonOptions()).isEmpty)
        // A replay compared with itself is the same; with a changed outcome it is not.
        var changed = points[0].outcomes
        let i = try #require(changed.lastIndex { $0.result != nil })
        changed[i].setResult(.error(1))
        #expect(Bisection.firstChange(points[0].outcomes, points[0].outcomes, options: ComparisonOptions()) == nil)
        #expect(Bisection.firstChange(points[0].outcomes, changed, options: ComparisonOptions())?.index == i)
    }

    @Test("shards: I/N with 1 <= I <= N; disjoint and complete", arguments: ["0/2", "3/2", "1/0", "x/2", "1/2/3", "", "/"])
    func badShards(text: String) {
        #expect(Shard(text) == nil, "\(text)")
    }

    @Test("shards together hold every rule once")
    func shards() throws {
        let rules = Shipped.catalogue.rules
        let parts = (1...4).map { Shard("\($0)/4")!.select(rules).map(\.id) }
        #expect(parts.flatMap { $0 }.sorted() == rules.map(\.id).sorted())
        #expect(Set(parts.flatMap { $0 }).count == rules.count)
    }

    @Test("the rule directory: given, or corpora/rules here; a missing or empty one is an error naming it")
    func ruleDirectory() throws {
        #expect(throws: CatalogueError.self) { _ = try RepositoryLocation.ruleDirectory(given: "/nonexistent/rules") }
        let dir = NSTemporaryDirectory() + "vfiotrace-rules-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try RepositoryLocation.ruleDirectory(given: dir) == dir)
        do {
            _ = try Catalogue(directory: dir)
            Issue.record("an empty directory made a catalogue")
        } catch {
            #expect(error.description == "\(dir): no rule scenarios (*.vfs)")
        }
        try "open /dev/vfio/vfio -> 3\n".write(toFile: dir + "/x.vfs", atomically: true, encoding: .utf8)
        do {
            _ = try Catalogue(directory: dir)
            Issue.record("a scenario without a rule header was accepted")
        } catch {
            #expect(error.description.contains("x.vfs: no '# rule: ID' header line"), "\(error)")
        }
        let shipped = try Catalogue(directory: Shipped.root + "/corpora/rules")
        #expect(shipped.rules.map(\.id) == Shipped.catalogue.rules.map(\.id))
    }

    @Test("the checkout is found from the current directory or above the executable")
    func checkout() {
        let found = RepositoryLocation.root(holding: "corpora/rules", isDirectory: true)
        #expect(found.map { FileManager.default.fileExists(atPath: $0 + "/Package.swift") } == true, "\(found ?? "nothing")")
        #expect(RepositoryLocation.root(holding: "no/such/thing", isDirectory: true) == nil)
    }

    @Test("selectors order profiles by kernel version: 5.10..6.0 holds 6.0 but not 6.6; latest is newer than any version")
    func selectors() {
        #expect(ProfileSelector("5.10..6.0").matches(.v6_0) && !ProfileSelector("5.10..6.0").matches(.v6_6))
        #expect(ProfileSelector("5.9+").matches(.v5_10) && !ProfileSelector("5.9+").matches(.v5_8))
        #expect(ProfileSelector("7.2+").matches(.latest) && !ProfileSelector("7.2+").matches(.v6_6))
        #expect(ProfileSelector("v16").matches(.v16) && ProfileSelector("5.8-").matches(.v16))
        #expect(!ProfileSelector("5.x+").isValid && !ProfileSelector("bogus").isValid)
    }
}

import TestSupport
import Testing
import Trace
@testable import Replay

/// A trace's recorded outcomes are untrusted input: a trace may claim a
/// state no kernel can be in. Replay and diff must answer with findings,
/// never trap (issue: SIGILL in replay, conform and bisect-check).
@Suite("Impossible recorded outcomes")
struct ImpossibleOutcomeTests {
    @Test("MAPs claimed successful inside, across or wrapping an existing mapping, then queried and unmapped: findings, no trap")
    func overlappingClaims() throws {
        let text = Scenario.iommu + """
        map_dma iova=0x100000 size=64K -> ok
        dirty start -> ok
        map_dma iova=0x104000 size=8K -> ok
        map_dma iova=0xf0000 size=128K -> ok
        map_dma iova=0xfffffffffffff000 size=8K -> ok
        dirty get iova=0x100000 size=64K -> ok dirty=[0..15]
        dirty get iova=0xf0000 size=128K -> ok dirty=[0..31]
        unmap_dma iova=0x100000 size=64K bitmap -> ok size=64K dirty=[0..15]
        unmap_dma iova=0xf0000 size=128K -> ok size=128K

        """
        let events = try Scenario.events(text)
        for profile in [KernelProfile.latest, .v5_10, .v16] {
            let steps = try Scenario.replay(text, profile: profile)
            #expect(steps.count == events.count)
            #expect(steps.filter(\.diverged).count >= 3, "\(profile.name): the impossible MAPs must be findings")
        }
        // diff of the trace against itself and against the engine's answers.
        var same = OutcomeChecker()
        for e in events { #expect(!same.check(expected: e, actual: e).diverged) }
        let engine = BitmapEngine(profile: .latest).outcomes(of: events)
        var other = OutcomeChecker()
        let diverged = zip(events, engine).filter { other.check(expected: $0, actual: $1).diverged }
        #expect(diverged.count >= 3)
    }

    /// A stream of MAP, UNMAP and GET_BITMAP lines over a few overlapping
    /// ranges, each with a claimed outcome picked at random.
    static func claims(seed: UInt64, count: Int) -> String {
        var g = SplitMix(seed: seed)
        func pick<T>(_ xs: [T]) -> T { xs[Int(g.next() % UInt64(xs.count))] }
        let iovas: [UInt64] = (0..<6).map { 0x100000 + $0 * 0x4000 }
        let sizes: [UInt64] = [0x4000, 0x8000, 0x10000, 0]
        var lines = [Scenario.iommu, "dirty start -> ok\n"]
        for _ in 0..<count {
            let iova = pick(iovas), size = pick(sizes)
            let pages = max(1, size >> 12)
            let a = g.next() % pages, b = a + g.next() % (pages - a)
            let bits = size == 0 ? "" : pick(["", " dirty=[\(a)..\(b)]", " dirty=[0..\(pages - 1)]"])
            let r = pick(["ok", "ok", "ok", "EINVAL", "EFAULT", "EEXIST"])
            switch g.next() % 5 {
            case 0, 1: lines.append("map_dma iova=0x\(String(iova, radix: 16)) size=0x\(String(size, radix: 16)) -> \(r)\n")
            case 2: lines.append("unmap_dma iova=0x\(String(iova, radix: 16)) size=0x\(String(size, radix: 16)) bitmap -> \(r)\(r == "ok" ? " size=0x\(String(size, radix: 16))" : "")\(r == "ok" ? bits : "")\n")
            case 3: lines.append("unmap_dma iova=0x\(String(iova, radix: 16)) size=0x\(String(size, radix: 16)) -> \(r)\n")
            default: lines.append("dirty get iova=0x\(String(iova, radix: 16)) size=0x\(String(size, radix: 16)) -> \(r)\(r == "ok" ? bits : "")\n")
            }
        }
        return lines.joined()
    }

    @Test("random claims over overlapping ranges never trap replay (every profile) or diff", arguments: 0..<25)
    func randomClaims(seed: Int) throws {
        let text = Self.claims(seed: UInt64(seed), count: 120)
        let events = try Scenario.events(text)
        for profile in KernelProfile.presets {
            let steps = try Scenario.replay(text, profile: profile)
            #expect(steps.count == events.count)
        }
        let shuffled = Self.claims(seed: UInt64(seed) + 1000, count: 120)
        var checker = OutcomeChecker()
        for (x, y) in zip(events, try Scenario.events(shuffled)) { _ = checker.check(expected: x, actual: y) }
    }
}

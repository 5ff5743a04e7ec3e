import Conform
import Replay
import Testing
import Trace
@testable import Differential

@Suite("Differential fuzzing: the generator, the shrinker, profiles against each other")
struct DifferentialTests {
    @Test("a seed gives the same stream every time; another seed another stream; the text form round-trips it")
    func reproducible() throws {
        var a = StreamGenerator(seed: 7), b = StreamGenerator(seed: 7), c = StreamGenerator(seed: 8)
        let s = a.stream()
        #expect(s == b.stream())
        #expect(s != c.stream())
        #expect(s.count == StreamGenerator.Configuration().events)
        var printer = TextPrinter()
        let text = s.map { printer.line(for: $0) }.joined(separator: "\n")
        let (_, back) = try TextParser.parse(text)
        #expect(back.map(\.body) == s.map(\.body))
    }

    @Test("streams are mostly valid: on the engine they map, track, query and pin successfully, and fail in many ways too")
    func deep() throws {
        var ok: [String: Int] = [:], failed = Set<String>()
        for seed in 1...40 as ClosedRange<UInt64> {
            var g = StreamGenerator(seed: seed)
            let engine = BitmapEngine(profile: .latest)
            for e in g.stream() {
                let p = engine.perform(e).event
                var printer = TextPrinter()
                let words = printer.line(for: Event(p.body)).split(separator: " ")
                // The call: `map_dma`, `pin`, ... and `dirty start|stop|get`.
                let verb = words.first == "dirty" ? words.prefix(2).joined(separator: " ") : String(words.first ?? "")
                switch p.result {
                case .ok?: ok[verb, default: 0] += 1
                case .error(let n)?: failed.insert("\(verb) \(ErrnoName.name(n))")
                case nil: break
                }
            }
        }
        for verb in ["map_dma", "unmap_dma", "dirty start", "dirty get", "pin", "dma_rw", "group_set_container"] {
            #expect(ok[verb, default: 0] >= 10, "\(verb): \(ok[verb, default: 0]) successful calls in 40 streams: \(ok)")
        }
        #expect(ok["dirty get", default: 0] >= 100, "\(ok)")
        #expect(failed.count >= 12, "only \(failed.count) kinds of failure: \(failed.sorted())")
    }

    @Test("the shards of a campaign split its seeds: disjoint, together all of them")
    func shards() {
        var all: [UInt64] = []
        for i in 1...3 {
            var c = FuzzCampaign.Configuration()
            c.streams = 10
            c.firstSeed = 100
            c.shard = (i, 3)
            all += FuzzCampaign(configuration: c, run: DifferentialRun(reference: .engine(.latest), candidate: .engine(.latest))).seeds
        }
        #expect(all.sorted() == Array(100..<110))
    }

    @Test("weights: NAME=N pairs; a bad one is an error that lists the kinds")
    func weights() throws {
        let w = try FuzzWeights(parsing: "map=9,pin=0")
        #expect(w.map == 9 && w.pin == 0 && w.dirty == FuzzWeights().dirty)
        #expect(throws: FuzzError.self) { try FuzzWeights(parsing: "maps=1") }
        #expect(throws: FuzzError.self) { try FuzzWeights(parsing: "map") }
    }

    @Test("every switch of a profile can be taken from another")
    func adoptable() {
        for (name, _) in KernelProfile.latest.switches {
            let p = KernelProfile.latest.adopting(name, from: .v16)
            #expect(p != nil, "\(name)")
            #expect(p?.switches.first { $0.name == name }?.value == KernelProfile.v16.switches.first { $0.name == name }?.value, "\(name)")
        }
        #expect(KernelProfile.latest.adopting("no-such-switch", from: .v16) == nil)
    }

    @Test("latest against 5.10: their known differences are found, shrunk to at most 10 events, and each names its switch")
    func profilesAgainstEachOther() throws {
        var c = FuzzCampaign.Configuration()
        c.streams = 150
        c.generator.events = 120
        let campaign = FuzzCampaign(configuration: c, run: DifferentialRun(reference: .engine(.v5_10), candidate: .engine(.latest)))
        let report = try campaign.execute()
        #expect(report.findings.count >= 3, "\(report.findings.map(\.signature))")
        let switches = Set(report.findings.compactMap { $0.explainedBy?.split(separator: " ").first.map(String.init) })
        #expect(switches.count >= 2, "\(switches)")
        for f in report.findings {
            #expect(f.explainedBy != nil, "seed \(f.seed) \(f.signature): unexplained: \(f.divergence.differences)")
            #expect(f.events.count <= 10, "seed \(f.seed) \(f.signature): \(f.events.count) events after shrinking")
            // The saved scenario replays on the reference and diverges on the candidate.
            let text = campaign.scenario(f, kernelRelease: nil)
            let (_, events) = try TextParser.parse(text)
            var onRef = Replayer(backend: BitmapEngine(profile: .v5_10))
            #expect(events.allSatisfy { !onRef.step($0).diverged }, "seed \(f.seed): the scenario does not hold on 5.10")
            var onCand = Replayer(backend: BitmapEngine(profile: .latest))
            #expect(events.contains { onCand.step($0).diverged }, "seed \(f.seed): the scenario does not diverge on latest")
        }
    }

    @Test("a profile against itself: nothing to find")
    func sameProfile() throws {
        var c = FuzzCampaign.Configuration()
        c.streams = 30
        let report = try FuzzCampaign(configuration: c, run: DifferentialRun(reference: .engine(.v6_6), candidate: .engine(.v6_6))).execute()
        #expect(report.divergentStreams == 0 && report.unreplayable == 0 && report.events == 30 * c.generator.events)
    }
}

/// Cases fuzzing found, kept in corpora/fuzz/ with the kernel's outcomes:
/// the engine (profile auto) must reproduce every one, on every run.
@Suite("corpora/fuzz: what fuzzing found, as the kernel answered it")
struct FuzzCorpusTests {
    static let dir: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/corpora/fuzz"
    }()

    @Test("every kept case replays on the engine with no divergence")
    func replays() throws {
        let names = try #require(directoryEntries(Self.dir)).filter { $0.hasSuffix(".vfs") }.sorted()
        #expect(!names.isEmpty, "no cases in \(Self.dir)")
        for n in names {
            let input = try EventInput.open(Self.dir + "/" + n)
            let (profile, _) = ProfileChoice.auto.resolve(for: input.header)
            var replayer = Replayer(backend: BitmapEngine(profile: profile))
            var summary = ReplaySummary()
            for e in try input.readAll() { summary.add(replayer.step(e)) }
            #expect(summary.divergent == 0 && summary.compared > 0 && summary.firstUnreplayable == nil,
                    "\(n): \(summary.line()) \(summary.firstDivergence ?? "")")
        }
    }
}

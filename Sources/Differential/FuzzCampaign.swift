import Conform
import Replay
import Trace

/// Many generated streams through a ``DifferentialRun``: each divergence
/// is shrunk (the first stream of each kind; later ones only counted),
/// explained when it can be (between two engine profiles: the one switch
/// whose value, taken from the reference, makes it go away), and written
/// as a scenario whose stated outcomes are the reference's.
public struct FuzzCampaign {
    public struct Configuration: Sendable {
        public var firstSeed: UInt64 = 1
        public var streams = 100
        public var generator = StreamGenerator.Configuration()
        /// Only the streams of this shard (1-based index, count).
        public var shard: (index: Int, count: Int) = (1, 1)
        public var shrinkBudget = 3000
        public init() {}
    }

    public struct Finding: Sendable {
        public let seed: UInt64
        public let signature: String
        /// The streams that diverged this way (the first was shrunk).
        public var streams: Int
        public let originalLength: Int
        /// The shrunk stream as the reference performed it.
        public let events: [Event]
        public let divergence: DifferentialRun.Divergence
        /// Between engine profiles: the switch that explains it, as
        /// `name (reference value, candidate value)`.
        public let explainedBy: String?
    }

    public struct Report: Sendable {
        public var streams = 0
        public var events = 0
        public var divergentStreams = 0
        public var unreplayable = 0
        public var firstUnreplayable: String?
        public var findings: [Finding] = []
        public var unexplained: Int { findings.filter { $0.explainedBy == nil }.count }
    }

    public let configuration: Configuration
    public let run: DifferentialRun

    public init(configuration: Configuration, run: DifferentialRun) {
        self.configuration = configuration
        self.run = run
    }

    /// The seeds this shard runs, in order.
    public var seeds: [UInt64] {
        (0..<configuration.streams).filter { $0 % configuration.shard.count == configuration.shard.index - 1 }
            .map { configuration.firstSeed &+ UInt64($0) }
    }

    public func execute(progress: (Int, Report) -> Void = { _, _ in }) throws(FuzzError) -> Report {
        var report = Report()
        for (n, seed) in seeds.enumerated() {
            var g = StreamGenerator(seed: seed, configuration: configuration.generator)
            let events = g.stream()
            let outcome = try run.run(events)
            report.streams += 1
            report.events += events.count
            if let why = outcome.unreplayable {
                report.unreplayable += 1
                if report.firstUnreplayable == nil { report.firstUnreplayable = "seed \(seed): \(why)" }
            }
            if let d = outcome.divergence {
                report.divergentStreams += 1
                if let i = report.findings.firstIndex(where: { $0.signature == d.signature }) {
                    report.findings[i].streams += 1
                } else {
                    var shrinker = Shrinker(run: run, budget: configuration.shrinkBudget)
                    let (small, o) = shrinker.shrink(events, outcome)
                    let div = o.divergence ?? d
                    // The reference's answers to the shrunk stream, numbered from 0.
                    let answered = o.performed.prefix(div.index + 1).enumerated().map { n, e in
                        var e = e
                        e.seq = UInt64(n)
                        return e
                    }
                    report.findings.append(Finding(seed: seed, signature: d.signature, streams: 1, originalLength: events.count,
                                                   events: answered, divergence: div, explainedBy: explain(small)))
                }
            }
            progress(n + 1, report)
        }
        return report
    }

    /// Between two engine profiles: the first switch of the reference that,
    /// adopted by the candidate, makes the shrunk stream agree.
    func explain(_ events: [Event]) -> String? {
        guard let ref = run.reference.profileIfEngine, let cand = run.candidate.profileIfEngine else { return nil }
        for ((name, rv), (_, cv)) in zip(ref.switches, cand.switches) where rv != cv {
            guard let p = cand.adopting(name, from: ref) else { continue }
            var trial = DifferentialRun(reference: run.reference, candidate: .engine(p, host: run.candidate.engineHost ?? HostModel()))
            trial.options = run.options
            if let o = try? trial.run(events), o.divergence == nil, o.unreplayable == nil {
                return "\(name) (\(ref.name): \(rv), \(cand.name): \(cv))"
            }
        }
        return nil
    }

    /// A finding as a scenario: the reference's outcomes stated, and what
    /// it is in comments.
    public func scenario(_ f: Finding, kernelRelease: String?) -> String {
        var lines = [
            "# Found by vfiotrace fuzz: seed \(f.seed) (\(f.originalLength) events, shrunk to \(f.events.count)),",
            "# reference \(run.reference.name), candidate \(run.candidate.name).",
            "# First divergence at event #\(f.divergence.index): \(f.divergence.differences.joined(separator: "; "))",
        ]
        if let e = f.explainedBy { lines.append("# Explained by the profile switch \(e).") }
        lines.append("!mode scenario")
        if let kernelRelease { lines.append("!kernel \(kernelRelease)") }
        var printer = TextPrinter()
        for e in f.events { lines.append(printer.line(for: Event(seq: e.seq, e.body))) }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension ConformRunner.Target {
    /// The profile of an engine target (nil for a real kernel).
    var profileIfEngine: KernelProfile? { engineHost == nil ? nil : profile }
}

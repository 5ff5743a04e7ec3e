import Conform
import Replay
import Trace

/// A stream run on a reference (a real kernel, or an engine profile) and
/// replayed on a candidate (the engine with another profile, or the
/// profile `auto` picks for the kernel), compared event by event and bit for
/// bit, as `vfiotrace replay` compares a recording.
public struct DifferentialRun {
    public let reference: ConformRunner.Target
    public let candidate: ConformRunner.Target
    public var options = ComparisonOptions()

    public init(reference: ConformRunner.Target, candidate: ConformRunner.Target) {
        self.reference = reference
        self.candidate = candidate
    }

    /// The first divergence of a stream: where, and what differs.
    public struct Divergence: Sendable, Equatable {
        /// Index of the event in the stream.
        public let index: Int
        /// The event as the reference performed it (its outcome stated), as text.
        public let event: String
        public let differences: [String]
        /// What must stay the same while shrinking: the kind of call and the
        /// fields that differ (not their values, which shrink too).
        public let signature: String
    }

    /// The outcome of one run: the reference's events (outcomes stated), the
    /// first divergence, or why the run is no comparison.
    public struct Outcome: Sendable {
        public let performed: [Event]
        public let divergence: Divergence?
        /// The reference could not perform an event (no device, no memory):
        /// the stream was compared up to it, and nothing after it means anything.
        public let unreplayable: String?
    }

    /// Runs `events` on a fresh reference backend and a fresh candidate.
    public func run(_ events: [Event]) throws(FuzzError) -> Outcome {
        let ref = try backend(reference, events)
        defer { ref.close() }
        var performed: [Event] = []
        var unreplayable: String? = nil
        for e in events {
            let p = ref.perform(e)
            if let why = p.notes.compactMap({ if case .notReplayed(let w) = $0 { w } else { nil } }).first {
                // Nothing after it is a comparison; the prefix still is.
                unreplayable = "event #\(e.seq): \(why)"
                break
            }
            performed.append(p.event)
        }
        let cand = try backend(candidate, performed)
        defer { cand.close() }
        var replayer = Replayer(backend: cand, options: options)
        for (i, e) in performed.enumerated() {
            let step = replayer.step(e)
            guard step.diverged else { continue }
            var printer = TextPrinter()
            let counted = step.differences.filter { $0.counts(options) }
            let fields = counted.map { d -> String in
                switch d {
                case .field(let name, _, _): name
                case .bitmap: "bitmap"
                case .inputs: "inputs"
                case .hazard: "hazard"
                }
            }
            let line = printer.line(for: Event(e.body))
            let verb = line.split(separator: " ").first.map(String.init) ?? "?"
            return Outcome(performed: performed,
                           divergence: Divergence(index: i, event: line,
                                                  differences: counted.map(\.description),
                                                  signature: verb + ":" + Set(fields).sorted().joined(separator: ",")),
                           unreplayable: unreplayable)
        }
        return Outcome(performed: performed, divergence: nil, unreplayable: unreplayable)
    }

    private func backend(_ t: ConformRunner.Target, _ events: [Event]) throws(FuzzError) -> Backend {
        switch t.makeBackend(events) {
        case .success(let b): return b
        case .failure(let e): throw FuzzError("\(t.name): \(e)")
        }
    }
}

/// Reduces a divergent stream to a small one that still diverges the same
/// way (same call kind, same fields), re-running every candidate on both
/// backends: first everything after the divergence goes, then chunks of
/// events (halving their size down to one), then values (sizes, counts,
/// IOVAs, flags, buffers) move towards the plainest that still diverges.
public struct Shrinker {
    public let run: DifferentialRun
    /// At most this many candidate runs (each one on both backends).
    public var budget: Int
    public private(set) var runs = 0

    public init(run: DifferentialRun, budget: Int = 3000) {
        self.run = run
        self.budget = budget
    }

    private mutating func stillDiverges(_ events: [Event], _ signature: String) -> DifferentialRun.Outcome? {
        guard runs < budget else { return nil }
        runs += 1
        guard let o = try? run.run(events), let d = o.divergence, d.signature == signature else { return nil }
        return o
    }

    /// The smallest stream found, and its outcome on the reference.
    public mutating func shrink(_ events: [Event], _ first: DifferentialRun.Outcome) -> (events: [Event], outcome: DifferentialRun.Outcome) {
        guard let d = first.divergence else { return (events, first) }
        let signature = d.signature
        var best = Array(events.prefix(d.index + 1))
        var outcome = stillDiverges(best, signature) ?? first
        if outcome.divergence == nil { best = events; outcome = first }
        // Chunks, from half the stream down to single events (the last
        // event, the divergent one, stays), then values; again while either
        // made progress, since a simpler value can make an event redundant
        // (a MAP moved onto another one's IOVA fails and can then go).
        var progress = true
        while progress && runs < budget {
            progress = false
            var chunk = max(1, best.count / 2)
            while chunk >= 1 && runs < budget {
                var i = 0
                var removed = false
                while i < best.count - 1 && runs < budget {
                    let end = min(i + chunk, best.count - 1)
                    var candidate = best
                    candidate.removeSubrange(i..<end)
                    if let o = stillDiverges(candidate, signature), let dd = o.divergence {
                        best = Array(candidate.prefix(dd.index + 1))
                        outcome = o
                        removed = true
                        progress = true
                    } else {
                        i += chunk
                    }
                }
                if !removed { chunk /= 2 }
            }
            var changed = true
            while changed && runs < budget {
                changed = false
                for i in best.indices {
                    for simpler in Self.simplifications(of: best[i].body) {
                        var candidate = best
                        candidate[i].body = simpler
                        if let o = stillDiverges(candidate, signature), let dd = o.divergence {
                            best = Array(candidate.prefix(dd.index + 1))
                            outcome = o
                            changed = true
                            progress = true
                            break
                        }
                    }
                    if changed { break }
                }
            }
        }
        return (best.enumerated().map { var e = $0.element; e.seq = UInt64($0.offset); return e }, outcome)
    }

    /// Plainer versions of one event's inputs, plainest first.
    static func simplifications(of body: EventBody) -> [EventBody] {
        var out: [EventBody] = []
        func halves(_ v: UInt64, page: Bool) -> [UInt64] {
            var r: [UInt64] = []
            let unit: UInt64 = page ? 4096 : 1
            if v > unit { r.append(unit) }
            if v / 2 >= unit && v / 2 != unit { r.append(page ? v / 2 / unit * unit : v / 2) }
            return r
        }
        switch body {
        case .mapDMA(let x):
            for s in halves(x.size, page: true) { var y = x; y.size = s; out.append(.mapDMA(y)) }
            if x.iova != 0 { var y = x; y.iova = 0; out.append(.mapDMA(y)); y = x; y.iova = x.iova / 2 / 4096 * 4096; out.append(.mapDMA(y)) }
            if x.flags != 3 { var y = x; y.flags = 3; out.append(.mapDMA(y)) }
            if x.vaddr != .valid { var y = x; y.vaddr = .valid; out.append(.mapDMA(y)) }
        case .unmapDMA(let x):
            for s in halves(x.size, page: true) { var y = x; y.size = s; if var b = y.bitmap { b.size = (s / 4096 + 63) / 64 * 8; y.bitmap = b }; out.append(.unmapDMA(y)) }
            if x.iova != 0 { var y = x; y.iova = 0; out.append(.unmapDMA(y)) }
            if let b = x.bitmap, b.prior != nil { var y = x; y.bitmap?.prior = nil; out.append(.unmapDMA(y)) }
            if let b = x.bitmap, b.data != .valid { var y = x; y.bitmap?.data = .valid; out.append(.unmapDMA(y)) }
        case .dirtyPages(let x):
            if var r = x.range {
                for s in halves(r.size, page: true) {
                    var y = x
                    r.size = s
                    r.bitmap.size = (s / max(r.bitmap.pgsize, 1) + 63) / 64 * 8
                    y.range = r
                    out.append(.dirtyPages(y))
                    r = x.range!
                }
                if r.iova != 0 { var y = x; y.range?.iova = 0; out.append(.dirtyPages(y)) }
                if r.bitmap.prior != nil { var y = x; y.range?.bitmap.prior = nil; out.append(.dirtyPages(y)) }
                if r.bitmap.data != .valid { var y = x; y.range?.bitmap.data = .valid; out.append(.dirtyPages(y)) }
            }
        case .pin(let x):
            if x.npage > 1 { var y = x; y.npage = 1; out.append(.pin(y)) }
            if x.iova != 0 { var y = x; y.iova = 0; out.append(.pin(y)) }
            if x.prot != 3 { var y = x; y.prot = 3; out.append(.pin(y)) }
        case .unpin(let x):
            if x.iova != 0 { var y = x; y.iova = 0; out.append(.unpin(y)) }
        case .dmaRW(let x):
            for s in halves(x.length, page: false) { var y = x; y.length = s; out.append(.dmaRW(y)) }
            if x.iova != 0 { var y = x; y.iova = 0; out.append(.dmaRW(y)) }
        case .checkExtension(let x) where x.ext != 3:
            var y = x; y.ext = 3; out.append(.checkExtension(y))
        case .getInfo(let x) where x.argsz != VFIOUAPI.iommuInfoSize:
            var y = x; y.argsz = VFIOUAPI.iommuInfoSize; out.append(.getInfo(y))
        default:
            break
        }
        return out
    }
}

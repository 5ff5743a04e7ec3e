import Trace

/// The tally of a replay or a diff, step by step: what was compared, what
/// diverged, what could not be replayed. `replay`, `diff`, the conformance
/// runner and bisect all count through this one type, so a step means the
/// same in each of their reports.
public struct ReplaySummary: Sendable {
    public let options: ComparisonOptions
    public private(set) var events = 0
    /// Steps whose outcome was compared (not skipped as not replayed or
    /// not modelled).
    public private(set) var compared = 0
    /// Steps with a difference that counts under ``options``.
    public private(set) var divergent = 0
    /// Steps whose only differences are bitmap bits outside every mapping,
    /// not counted because the comparison is lenient.
    public private(set) var outsideOnly = 0
    public private(set) var notReplayed = 0
    public private(set) var notModelled = 0
    /// Compared steps on which the modelled kernel would crash.
    public private(set) var hazards = 0
    /// Events that state an outcome (a result or a bitmap), whatever
    /// happened to them.
    public private(set) var statedOutcomes = 0
    /// Why the first event with a stated outcome could not be replayed:
    /// then the replay is no valid comparison (the later divergences may
    /// only follow from it).
    public private(set) var firstUnreplayable: String?
    /// The first counting difference, as `event: difference`.
    public private(set) var firstDivergence: String?
    /// The first kernel hazard on any step.
    public private(set) var firstHazard: String?
    /// Recorded opens of `/dev/vfio` nodes, and those recorded as failed
    /// (with the first one's errno) that the backend opened: a recording
    /// made where VFIO was not usable.
    public private(set) var vfioOpens = 0
    public private(set) var failedVFIOOpens = 0
    public private(set) var failedVFIOOpenErrno: Int32?

    public init(options: ComparisonOptions = ComparisonOptions()) {
        self.options = options
    }

    /// What a step turned out to be.
    public enum Kind: Sendable, Equatable {
        case skipped, matched, divergent, outsideMappingsOnly
    }

    /// Counts `step` and says what it was.
    @discardableResult
    public mutating func add(_ step: ReplayStep) -> Kind {
        events += 1
        let e = step.expected
        if e.result != nil || e.bitmapOutcome?.out != nil { statedOutcomes += 1 }
        if case .open(let o) = e.body, o.path.hasPrefix("/dev/vfio/"), let r = o.result {
            vfioOpens += 1
            if case .error(let code) = r, case .open(let a) = step.actual.body, a.result?.isSuccess == true {
                failedVFIOOpens += 1
                if failedVFIOOpenErrno == nil { failedVFIOOpenErrno = code }
            }
        }
        if firstHazard == nil, let h = step.differences.lazy.compactMap({ d -> String? in
            if case .hazard(let h) = d { return h }
            return nil
        }).first {
            firstHazard = h
        }
        for note in step.notes {
            switch note {
            case .notReplayed(let why):
                notReplayed += 1
                if firstUnreplayable == nil && e.result != nil { firstUnreplayable = "\(e.inputLine): \(why)" }
                return .skipped
            case .notModelled:
                notModelled += 1
                return .skipped
            default: continue
            }
        }
        compared += 1
        if step.differences.contains(where: { if case .hazard = $0 { return true }; return false }) { hazards += 1 }
        guard !step.differences.isEmpty else { return .matched }
        guard step.diverged else {
            outsideOnly += 1
            return .outsideMappingsOnly
        }
        divergent += 1
        if firstDivergence == nil, let d = step.differences.first(where: {
            if case .hazard = $0 { return false }
            return $0.counts(options)
        }) {
            firstDivergence = "\(e.inputLine): \(d)"
        }
        return .divergent
    }

    /// The closing line of a report: `12 events, 10 compared, 1 divergent`
    /// and what else happened; `extra` is appended after a semicolon.
    public func line(extra: String? = nil, shown: Int? = nil) -> String {
        var s = "\(events) events, \(compared) compared, \(divergent) divergent"
        if outsideOnly > 0 { s += ", \(outsideOnly) differing only outside mappings (not counted: --lenient)" }
        if notReplayed > 0 { s += ", \(notReplayed) not replayed" }
        if notModelled > 0 { s += ", \(notModelled) not modelled (undecoded)" }
        if hazards > 0 { s += ", \(hazards) kernel hazards" }
        if let extra { s += "; " + extra }
        if let shown, divergent > shown { s += " (first \(shown) shown; --max-divergences for more)" }
        if let why = noVFIOInRecording { s += "\n" + why }
        return s
    }

    /// Said once when every `/dev/vfio` open of the recording failed but
    /// the backend's worked: everything after follows from that.
    public var noVFIOInRecording: String? {
        guard vfioOpens > 0, failedVFIOOpens == vfioOpens, let e = failedVFIOOpenErrno else { return nil }
        return "every /dev/vfio open in the recording failed (\(ErrnoName.name(e))): it was made where VFIO was not usable "
            + "(module not loaded, no device bound to vfio-pci, no permission); the divergences after the opens follow from that"
    }
}

extension ReplayStep {
    /// The differences of this step, one a line (bitmap runs first split
    /// into their lines), each indented by `indent`.
    public func differenceLines(indent: String) -> [String] {
        var lines: [String] = []
        for d in differences {
            switch d {
            case .bitmap(let b): lines += b.lines().map { indent + $0 }
            default: lines.append(indent + d.description)
            }
        }
        return lines
    }

    /// The event's input line indented by `indent`, then its differences
    /// four spaces further in.
    public func reportLines(indent: String) -> [String] {
        [indent + expected.inputLine] + differenceLines(indent: indent + "    ")
    }
}

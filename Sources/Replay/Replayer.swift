import Trace

/// One event of a replay or a diff: what was expected, what happened, and
/// how they differ.
public struct ReplayStep: Sendable {
    /// Position in the stream, from 0.
    public var index: Int
    /// The event as recorded (or as the first trace of a diff has it).
    public var expected: Event
    /// The event as the backend performed it (or as the second trace has it).
    public var actual: Event
    public var notes: [BackendNote]
    /// Every difference found, whether or not it counts under the options.
    public var differences: [Difference]
    /// True when some difference counts under the comparison options.
    public var diverged: Bool
    /// For an event with a bitmap outcome: the page ranges of the bitmap
    /// (bit numbers from its base) that lay inside the container's mappings
    /// before the call, sorted; empty otherwise. Reports draw them.
    public var coverage: [Range<UInt64>] = []
}

/// Compares a stream of expected events against actual ones, following the
/// mappings so that bitmap differences are split into bits inside mappings
/// and bits in holes. `Replayer` feeds it from a backend, `diff` from a
/// second trace.
public struct OutcomeChecker {
    public var options: ComparisonOptions
    /// Outcome fields the kernel leaves undefined, never compared.
    public var ignored: Set<OutcomeField>
    private var shadow = MappingShadow()
    private var index = 0

    public init(options: ComparisonOptions = ComparisonOptions(), ignored: Set<OutcomeField> = []) {
        self.options = options
        self.ignored = ignored
    }

    /// - Parameter sameInputs: the caller guarantees both events are the
    ///   same call (a backend's answer to it), so the inputs are not compared.
    public mutating func check(expected: Event, actual: Event, notes: [BackendNote] = [],
                               sameInputs: Bool = false) -> ReplayStep {
        var differences: [Difference] = []
        var coverage: [Range<UInt64>] = []
        if !sameInputs && expected.inputs != actual.inputs {
            differences.append(.inputs(expected: expected.inputLine, actual: actual.inputLine))
        } else {
            if let (out, base, pgsize) = expected.bitmapOutcome, let out {
                coverage = shadow.coverage(fd: containerFD(expected) ?? -1, base: base, pgsize: pgsize, pages: out.count * 8)
            }
            var ignoredHere = ignored
            if !notes.isEmpty { for case .unspecified(let f) in notes { ignoredHere.insert(f) } }
            differences = OutcomeComparison.differences(expected: expected, actual: actual, coverage: coverage,
                                                        ignored: ignoredHere)
        }
        for case .hazard(let h) in notes { differences.append(.hazard(h)) }
        shadow.apply(expected, result: expected.result ?? actual.result)
        defer { index += 1 }
        return ReplayStep(index: index, expected: expected, actual: actual, notes: notes, differences: differences,
                          diverged: differences.contains { $0.counts(options) }, coverage: coverage)
    }

    private func containerFD(_ e: Event) -> Int32? {
        switch e.body {
        case .dirtyPages(let x): x.fd
        case .unmapDMA(let x): x.fd
        default: nil
        }
    }
}

/// Drives events through a backend and checks each outcome against the
/// recorded one.
public struct Replayer {
    public let backend: Backend
    public private(set) var checker: OutcomeChecker

    public init(backend: Backend, options: ComparisonOptions = ComparisonOptions()) {
        self.backend = backend
        checker = OutcomeChecker(options: options)
    }

    public mutating func step(_ event: Event) -> ReplayStep {
        let performed = backend.perform(event)
        return checker.check(expected: event, actual: performed.event, notes: performed.notes, sameInputs: true)
    }
}

import Trace

/// Two traces (or scenarios) compared event by event, paired by position,
/// both streamed: what `vfiotrace diff` reports and the lab's verdicts
/// check. Outcome fields either kernel leaves undefined are not compared.
public struct TraceDiff {
    public private(set) var summary: ReplaySummary
    /// Events of the first input past the end of the second, and the
    /// other way round (at most one of them is not 0).
    public private(set) var onlyInFirst = 0
    public private(set) var onlyInSecond = 0

    /// Compares `a` (expected) with `b`, handing each step to `each` as it
    /// is found. Damage in either input is an error after the comparison.
    public static func compare(_ a: EventInput, _ b: EventInput, options: ComparisonOptions = ComparisonOptions(),
                               each: (ReplayStep, ReplaySummary.Kind) -> Void = { _, _ in }) throws(InputError) -> TraceDiff {
        var checker = OutcomeChecker(options: options, ignored: OutcomeField.undefined(comparing: a.header, b.header))
        var d = TraceDiff(summary: ReplaySummary(options: options))
        var ea = try a.events(), eb = try b.events()
        var secondEnded = false
        while let x = try ea.next() {
            if !secondEnded, let y = try eb.next() {
                let step = checker.check(expected: x, actual: y)
                each(step, d.summary.add(step))
            } else {
                secondEnded = true
                d.onlyInFirst += 1
            }
        }
        if !secondEnded { while try eb.next() != nil { d.onlyInSecond += 1 } }
        for (input, it) in [(a, ea), (b, eb)] {
            if let p = it.problems.first { throw .damaged(path: input.path, p) }
        }
        return d
    }
}

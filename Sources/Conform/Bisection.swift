import Replay
import Trace

/// Where a trace's outcomes change along an ordered list of profiles or
/// kernels. The outcomes of neighbours are compared with each other, not
/// with what the trace recorded: a change point is where the next kernel
/// line answers differently from the one before.
public enum Bisection {
    /// One trace's outcomes on one point of the list.
    public struct Point: Sendable {
        public let name: String
        public let outcomes: [Event]
        public init(name: String, outcomes: [Event]) {
            self.name = name
            self.outcomes = outcomes
        }
    }

    /// Two neighbours of the list and the first event whose outcome differs
    /// between them (nil: the same outcomes).
    public struct Comparison: Sendable {
        public let from: String
        public let to: String
        public let firstChange: ReplayStep?
    }

    /// The first event whose outcome differs between two replays of one
    /// trace (`expected` from the first, `actual` from the second), or nil.
    /// The migration capability's undefined bytes are never compared.
    public static func firstChange(_ a: [Event], _ b: [Event], options: ComparisonOptions) -> ReplayStep? {
        var checker = OutcomeChecker(options: options, ignored: [.migrationCapHole])
        for (x, y) in zip(a, b) {
            let step = checker.check(expected: x, actual: y, sameInputs: true)
            if step.diverged { return step }
        }
        return nil
    }

    /// Each neighbour pair of `points`, in order.
    public static func compare(_ points: [Point], options: ComparisonOptions) -> [Comparison] {
        guard points.count > 1 else { return [] }
        return (1..<points.count).map { i in
            Comparison(from: points[i - 1].name, to: points[i].name,
                       firstChange: firstChange(points[i - 1].outcomes, points[i].outcomes, options: options))
        }
    }

    /// A point's outcomes on the bitmap engine under `profile`, on `host`.
    public static func enginePoint(_ events: [Event], profile: KernelProfile, host: HostModel = HostModel()) -> Point {
        Point(name: profile.name, outcomes: BitmapEngine(profile: profile, host: host).outcomes(of: events))
    }
}

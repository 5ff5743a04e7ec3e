#if canImport(Glibc)
import Glibc
#endif

/// CLOCK_MONOTONIC in seconds.
public func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Best of `n` runs, in seconds.
public func best(_ n: Int, _ body: () throws -> Void) rethrows -> Double {
    var b = Double.infinity
    for _ in 0..<n {
        let t = now()
        try body()
        b = min(b, now() - t)
    }
    return b
}

/// One figure for `scripts/bench --json`: a line `metric KEY VALUE` that the
/// script gathers into its JSON object (the human-readable lines stay).
public func metric(_ key: String, _ value: Double) {
    print("metric \(key) \(value)")
}

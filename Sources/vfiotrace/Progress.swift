import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// `--quiet`: no progress line. Shared by every command with long work.
struct ProgressOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "No progress line on standard error (there is none either when standard error is not a terminal, with TERM=dumb, or in CI).")
    var quiet = false

    /// A progress meter for this command, drawn only where it may be.
    func meter(_ label: String, unit: String = "events", total: UInt64?) -> Progress {
        Progress(label: label, unit: unit, total: total, enabled: !quiet && Progress.terminalAllowsIt)
    }
}

/// A progress line on standard error: done of total with the percentage,
/// the rate and the time left when the total is known, else the count and
/// the rate. Redrawn at most five times a second; the clock is read about
/// twenty times a second whatever the rate, so a per-event update costs a
/// comparison.
struct Progress {
    let label: String
    let unit: String
    /// What the work will reach, when known (a trace's seek index, a rule
    /// count). Dropped if the count passes it: a trace's index may claim
    /// anything.
    private(set) var total: UInt64?
    let enabled: Bool
    private let started: UInt64
    private var nextCheck: UInt64 = 1
    /// When the line was last drawn; the first is drawn a second in, so
    /// short work never shows one.
    private var lastDrawn: UInt64
    private var shown = false

    init(label: String, unit: String = "events", total: UInt64?, enabled: Bool) {
        self.label = label
        self.unit = unit
        self.total = total
        self.enabled = enabled
        started = monotonicNanoseconds()
        lastDrawn = started &+ Self.firstDrawAfter &- 200_000_000
    }

    /// A second, or VFIOTRACE_PROGRESS_AFTER seconds (the CLI tests draw
    /// at once with 0).
    static let firstDrawAfter: UInt64 = {
        if let v = getenv("VFIOTRACE_PROGRESS_AFTER"), let s = Double(String(cString: v)), s >= 0, s < 3600 { return UInt64(s * 1e9) }
        return 1_000_000_000
    }()

    /// Standard error is a terminal that is not `dumb`, and this is not CI.
    static var terminalAllowsIt: Bool {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        if let ci = env("CI"), !ci.isEmpty, ci != "0", ci.lowercased() != "false" { return false }
        if env("TERM") == "dumb" { return false }
        return isatty(2) == 1
    }

    mutating func update(_ done: UInt64) {
        guard enabled, done >= nextCheck else { return }
        let now = monotonicNanoseconds()
        let elapsed = max(now &- started, 1)
        // About 20 clock reads a second at the current rate.
        let perSecond = Double(done) * 1e9 / Double(elapsed)
        nextCheck = done + max(1, UInt64(perSecond / 20))
        // Signed: before the first draw, lastDrawn lies in the future.
        guard Int64(bitPattern: now &- lastDrawn) >= 200_000_000 else { return }
        lastDrawn = now
        if let t = total, done > t { total = nil }
        printRaw("\r" + Self.line(label: label, unit: unit, done: done, total: total, elapsed: elapsed) + "\u{1B}[K", fd: 2)
        shown = true
    }

    /// Clears the line (the command's own output follows).
    func finish() {
        if shown { printRaw("\r\u{1B}[K", fd: 2) }
    }

    /// The text of one progress line (no terminal control).
    static func line(label: String, unit: String, done: UInt64, total: UInt64?, elapsed: UInt64) -> String {
        let seconds = Double(elapsed) / 1e9
        let rate = seconds > 0 ? Double(done) / seconds : 0
        var s = "\(label): \(done)"
        if let total, total > 0 {
            s += " of \(total) \(unit) (\(min(done * 100 / total, 100))%)"
        } else {
            s += " \(unit)"
        }
        if seconds >= 0.5 { s += ", \(compact(rate))/s" }
        if let total, total > done, rate > 0, seconds >= 1 {
            s += ", \(duration(Double(total - done) / rate)) left"
        }
        return s
    }

    /// 950, 12.3k, 41k, 4.1M.
    static func compact(_ x: Double) -> String {
        func tenths(_ v: Double) -> String {
            let t = Int((v * 10).rounded())
            return "\(t / 10).\(t % 10)"
        }
        if x >= 1e6 { return tenths(x / 1e6) + "M" }
        if x >= 1e4 { return "\(Int((x / 1e3).rounded()))k" }
        if x >= 1e3 { return tenths(x / 1e3) + "k" }
        return x >= 10 ? "\(Int(x.rounded()))" : tenths(x)
    }

    /// 42 s, 3 min 05 s, 2 h 10 min.
    static func duration(_ s: Double) -> String {
        let t = s.isFinite ? Int(min(s, 1e9).rounded(.up)) : 0
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if t < 60 { return "\(t) s" }
        if t < 3600 { return "\(t / 60) min \(two(t % 60)) s" }
        return "\(t / 3600) h \(two((t % 3600) / 60)) min"
    }
}

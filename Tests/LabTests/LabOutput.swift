import Foundation
import Replay
import Trace

/// What scripts/lab-lane's guests left behind, read through the library.
/// The lane runs the guests, then these tests with
///   VFIOTRACE_LAB_OUT      the guests' output (OUT/<release>/, see scripts/lab-lane-guest)
///   VFIOTRACE_LAB_KERNEL   which releases to check: 6.1, 6.12 or all (default)
///   VFIOTRACE_LAB_OUT_510  the 5.10 guest's recordings
///   VFIOTRACE_LAB_BISECT   `vfiotrace bisect --kernels 5.10,6.1 --lab-out` (and its rc)
/// Without them every test here is skipped with that reason: a plain
/// `swift test` has no lab.
enum Lab {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func env(_ name: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { return nil }
        return v
    }

    static let out = env("VFIOTRACE_LAB_OUT")
    static let out510 = env("VFIOTRACE_LAB_OUT_510")
    static let bisect = env("VFIOTRACE_LAB_BISECT")
    static let skipReason = "no lab output: scripts/lab-lane runs the guests and then these tests with VFIOTRACE_LAB_OUT set"

    /// The kernel releases the guests ran (directories holding output.txt),
    /// limited to VFIOTRACE_LAB_KERNEL's line.
    static let releases: [String] = {
        guard let out, let names = try? FileManager.default.contentsOfDirectory(atPath: out) else { return [] }
        let only = env("VFIOTRACE_LAB_KERNEL").flatMap { $0 == "all" ? nil : $0 + "." }
        return names.sorted().filter { name in
            FileManager.default.fileExists(atPath: out + "/" + name + "/output.txt") && only.map { name.hasPrefix($0) } != false
        }
    }()

    /// The corpus scenarios the guests replay (corpora/*.vfs).
    static let scenarios: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/corpora")) ?? []
        return names.filter { $0.hasSuffix(".vfs") }.map { String($0.dropLast(4)) }.sorted()
    }()

    static func dir(_ release: String) -> String { out! + "/" + release }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    static func events(_ path: String) throws -> [Event] { try EventInput.open(path).readAll() }

    /// An exit code the guest wrote (`echo $? > FILE`); nil when missing.
    static func rc(_ path: String) -> Int32? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The trace replayed on the engine with the profile `auto` picks for
    /// its kernel and the host its own answers state, as `vfiotrace replay`
    /// does (5.10's intel-iommu reports other page sizes than 6.x's).
    static func engineReplay(_ path: String) throws -> ReplaySummary {
        let input = try EventInput.open(path)
        let (profile, _) = ProfileChoice.auto.resolve(for: input.header)
        let events = try input.readAll()
        var replayer = Replayer(backend: BitmapEngine(profile: profile, host: HostModel.stated(by: events).0))
        var summary = ReplaySummary()
        for e in events { summary.add(replayer.step(e)) }
        return summary
    }

    /// Two traces compared event by event, as `vfiotrace diff` does: the
    /// summary, and how many events one has more than the other.
    static func diff(_ expected: String, _ actual: String) throws -> (summary: ReplaySummary, lengthDifference: Int) {
        let d = try TraceDiff.compare(EventInput.open(expected), EventInput.open(actual))
        return (d.summary, d.onlyInSecond - d.onlyInFirst)
    }

    /// The pin and dma_rw calls of a trace, as text without times, threads
    /// or positions. (Unpins are left out: the test device unpins page by
    /// page, and only pages it holds, so its requests and the kernel's
    /// calls differ by design.)
    static func kernelCalls(_ events: [Event]) -> [String] {
        events.compactMap { e in
            switch e.body {
            case .pin, .dmaRW:
                var printer = TextPrinter()
                return printer.line(for: Event(seq: 0, time: 0, tid: 0, e.body))
            default: return nil
            }
        }
    }

    static func pins(_ events: [Event]) -> Int {
        events.filter { if case .pin = $0.body { return true }; return false }.count
    }
}

extension ReplaySummary {
    /// Matched: nothing divergent, nothing that could not be checked.
    var clean: Bool { divergent == 0 && firstUnreplayable == nil }

    var why: String { line() + (firstDivergence.map { "; first: \($0)" } ?? "") + (firstUnreplayable.map { "; unreplayable: \($0)" } ?? "") }
}

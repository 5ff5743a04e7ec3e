import Foundation
import Testing

/// Progress lines need a terminal: these run the executable under
/// util-linux `script`, which gives it a pseudo-terminal.
@Suite("progress lines: totals when known, only on a terminal", .serialized)
struct ProgressTests {
    func onTerminal(_ args: [String], term: String = "xterm", ci: String = "") throws -> (code: Int32, screen: String) {
        try CLI.onTerminal(args, environment: ["TERM": term, "CI": ci, "VFIOTRACE_PROGRESS_AFTER": "0"])
    }

    /// A trace of `n` + 1 events, with its seek index.
    func bigTrace(_ n: Int) throws -> String {
        let dir = CLI.tempDir()
        let text = "open /dev/vfio/vfio -> 3\n" + String(repeating: "get_api_version -> 0\n", count: n)
        try text.write(toFile: dir + "/big.vfs", atomically: true, encoding: .utf8)
        let c = try CLI.run(["compile", dir + "/big.vfs", "-o", dir + "/big.vft"])
        #expect(c.code == 0, "\(c.err)")
        return dir + "/big.vft"
    }

    /// The progress lines a screen shows for `label`.
    func lines(_ screen: String, _ label: String) -> [String] {
        screen.split(separator: "\n").map(String.init).filter { $0.hasPrefix(label + ": ") }
    }

    @Test("replay counts against the events the trace's index announces, never past 100%; the header comes first")
    func replayTotals() throws {
        let trace = try bigTrace(20_000)
        let (code, screen) = try onTerminal(["replay", trace])
        #expect(code == 0, "\(screen)")
        let shown = lines(screen, "replay")
        #expect(!shown.isEmpty, "no progress line on a terminal: \(screen)")
        for l in shown {
            #expect(l.contains(" of 20001 events ("), "\(l)")
            let percent = l.split(separator: "(").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) }
            #expect(percent.map { $0 <= 100 } == true, "\(l)")
        }
        #expect(screen.range(of: "replaying ")!.lowerBound < screen.range(of: "replay: ")!.lowerBound, "the header after the progress: \(screen)")
    }

    @Test("none with --quiet, with TERM=dumb, in CI, or when standard error is not a terminal")
    func suppressed() throws {
        let trace = try bigTrace(5_000)
        #expect(lines(try onTerminal(["replay", trace, "--quiet"]).screen, "replay").isEmpty)
        #expect(lines(try onTerminal(["replay", trace], term: "dumb").screen, "replay").isEmpty)
        #expect(lines(try onTerminal(["replay", trace], ci: "true").screen, "replay").isEmpty)
        let piped = try CLI.run(["replay", trace], environment: ["CI": "", "VFIOTRACE_PROGRESS_AFTER": "0"])
        #expect(piped.code == 0 && !piped.err.contains("replay: "), "\(piped.err)")
    }

    @Test("conform --profile all counts rule runs over every profile; verify counts events")
    func conformAndVerify() throws {
        let (code, screen) = try onTerminal(["conform", "--profile", "all"])
        #expect(code == 0, "\(screen)")
        let shown = lines(screen, "conform 8 profiles")
        #expect(!shown.isEmpty, "\(screen)")
        let total = shown.first.flatMap { $0.components(separatedBy: " of ").dropFirst().first?.split(separator: " ").first }.flatMap { Int($0) }
        #expect(total.map { $0 > 8 && $0 % 8 == 0 } == true, "a total of rules × 8 profiles: \(shown.first ?? "")")
        let trace = try bigTrace(20_000)
        let v = try onTerminal(["verify", trace])
        #expect(lines(v.screen, "verify").contains { $0.contains(" of 20001 events") }, "\(v.screen)")
    }
}

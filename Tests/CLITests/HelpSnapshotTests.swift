import Foundation
import Testing

/// `--help` of every command at 80 and 120 columns, against the snapshots
/// in Tests/CLITests/Snapshots (VFIOTRACE_UPDATE_SNAPSHOTS=1 rewrites them:
/// review the diff before committing).
@Suite("help: snapshots at 80 and 120 columns, wrapped once")
struct HelpSnapshotTests {
    static let commands = ["", "compile", "cat", "info", "verify", "recover", "replay", "diff", "conform", "bisect",
                           "bisect-check", "fuzz", "profiles", "host", "record"]

    func help(_ command: String, columns: Int) throws -> String {
        let args = (command.isEmpty ? [] : [command]) + ["--help"]
        let r = try CLI.run(args, environment: ["COLUMNS": "\(columns)"])
        #expect(r.code == 0, "\(command) --help: \(r.err)")
        return r.out
    }

    @Test("every command's help matches its snapshot", arguments: [80, 120])
    func snapshot(columns: Int) throws {
        var all = ""
        for c in Self.commands {
            all += "=== vfiotrace \(c.isEmpty ? "" : c + " ")--help (COLUMNS=\(columns))\n" + (try help(c, columns: columns)) + "\n"
        }
        try Snapshot.check(all, named: "help-\(columns).txt")
    }

    @Test("examples are never broken across lines, and prose is wrapped once, greedily, to the width", arguments: [80, 120])
    func wrappedOnce(columns: Int) throws {
        for c in Self.commands {
            let lines = try help(c, columns: columns).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var inExamples = false
            for (i, l) in lines.enumerated() {
                if l == "Examples:" || l.hasSuffix("Examples:") { inExamples = true; continue }
                if l.isEmpty { inExamples = false; continue }
                if inExamples {
                    #expect(l.hasPrefix("  "), "\(c) at \(columns): an example broken across lines, `\(lines[i - 1])` / `\(l)`")
                    continue
                }
                // Prose at column 0: had the next line's first word fitted, a
                // single greedy wrap would have put it here.
                guard i + 1 < lines.count, let first = l.first, first != " ", !l.hasPrefix("USAGE:"), !l.hasSuffix(":") else { continue }
                let next = lines[i + 1]
                guard let nextFirst = next.first, nextFirst != " ", !next.hasSuffix(":") else { continue }
                let word = next.prefix { $0 != " " }
                #expect(l.count + 1 + word.count >= columns,  // argument-parser leaves the last column free
                        "\(c) at \(columns): wrapped early: `\(l)` (\(l.count)) then `\(word)`")
            }
        }
    }
}

/// Text compared with a file under Tests/CLITests/Snapshots.
enum Snapshot {
    static let directory = CLI.packageRoot + "/Tests/CLITests/Snapshots"

    static func check(_ text: String, named name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = directory + "/" + name
        if ProcessInfo.processInfo.environment["VFIOTRACE_UPDATE_SNAPSHOTS"] == "1" {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOfFile: path, encoding: .utf8) else {
            Issue.record("no snapshot \(path): run the tests with VFIOTRACE_UPDATE_SNAPSHOTS=1 and review it", sourceLocation: sourceLocation)
            return
        }
        if expected == text { return }
        let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let b = text.split(separator: "\n", omittingEmptySubsequences: false)
        let k = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        Issue.record("""
            \(name) differs from line \(k + 1):
              snapshot: \(k < a.count ? String(a[k]) : "(end)")
              now:      \(k < b.count ? String(b[k]) : "(end)")
            (VFIOTRACE_UPDATE_SNAPSHOTS=1 rewrites it)
            """, sourceLocation: sourceLocation)
    }
}

import Foundation
import Testing

/// Messages that say what is wrong and what to do (issue 17 item 6), each
/// as a user meets it.
@Suite("Messages that guide")
struct MessageTests {
    static func scenario(_ text: String) throws -> String {
        let path = CLI.tempDir() + "/s.vfs"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a scenario given where a binary trace is read: says it is text and how to compile it")
    func textGivenAsTrace() throws {
        let s = CLI.packageRoot + "/corpora/basic-tracking.vfs"
        for command in ["cat", "verify", "info"] {
            let r = try CLI.run([command, s])
            #expect(r.code == 2, "\(command): \(r.err)")
            #expect(r.err.contains("offset 0: text, not a binary trace") && r.err.contains("vfiotrace compile"), "\(command): \(r.err)")
        }
    }

    @Test("a negative number is refused as a value, not taken for an option", arguments: [
        ["cat", "TRACE", "--from", "-1"], ["cat", "TRACE", "--count", "-3"],
        ["replay", "SCENARIO", "--max-divergences", "-1"], ["fuzz", "--against", "latest", "--streams", "-5"],
    ])
    func negativeValues(_ args: [String]) throws {
        let trace = CLI.tempDir() + "/t.vft"
        #expect(try CLI.run(["compile", CLI.packageRoot + "/corpora/basic-tracking.vfs", "-o", trace]).code == 0)
        let r = try CLI.run(args.map { $0 == "TRACE" ? trace : $0 == "SCENARIO" ? CLI.packageRoot + "/corpora/basic-tracking.vfs" : $0 })
        #expect(r.code == 2, "\(args): \(r.err)")
        #expect(!r.err.contains("Missing value"), "\(args): \(r.err)")
        #expect(r.err.contains(args[args.count - 2]), "\(args): the message names the option: \(r.err)")
    }

    @Test("profiles: --show and --compare together is refused, not half ignored")
    func profilesBoth() throws {
        let r = try CLI.run(["profiles", "--show", "5.8", "--compare", "5.8", "6.6"])
        #expect(r.code == 2 && r.err.contains("not both"), "\(r.err)")
    }

    @Test("`key = value` with spaces: the column of the stray '=' and what to write", arguments: [
        ("map_dma iova = 0x1 size=4K", 14), ("map_dma iova =0x1 size=4K", 14),
    ])
    func spacedKeyValue(_ line: String, _ column: Int) throws {
        let s = try Self.scenario("open /dev/vfio/vfio -> 3\n\(line)\n")
        let r = try CLI.run(["replay", s])
        #expect(r.code == 2, "\(r.out)\(r.err)")
        #expect(r.err.contains("s.vfs:2:\(column): write key=value without spaces around '='"), "\(r.err)")
    }

    @Test("verify of a damaged trace: exit 1 with its findings and no empty 'vfiotrace:' line")
    func verifyNoEmptyLine() throws {
        let dir = CLI.tempDir()
        let trace = dir + "/t.vft"
        #expect(try CLI.run(["compile", CLI.packageRoot + "/corpora/pinned-pages.vfs", "-o", trace]).code == 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: trace))
        bytes = bytes.prefix(bytes.count - 40)
        try bytes.write(to: URL(fileURLWithPath: trace))
        let r = try CLI.run(["verify", trace])
        #expect(r.code == 1, "\(r.out)\(r.err)")
        #expect(!r.err.split(separator: "\n", omittingEmptySubsequences: false).contains { $0.trimmingCharacters(in: .whitespaces) == "vfiotrace:" }, "\(r.err)")
    }

    @Test("a 10 MB token in an error is cut to its start and its length")
    func longToken() throws {
        let s = try Self.scenario("open /dev/vfio/vfio -> 3\nmap_dma iova=" + String(repeating: "x", count: 10 << 20) + " size=4K\n")
        let r = try CLI.run(["replay", s])
        #expect(r.code == 2 && r.err.utf8.count < 400, "\(r.err.prefix(400))")
        #expect(r.err.contains("s.vfs:2:9: iova=xxxx") && r.err.contains("…(10485766 bytes): not a number"), "\(r.err.prefix(400))")
    }

    @Test("conform names a broken rule's place as file:line:col")
    func brokenRuleLocation() throws {
        let dir = CLI.tempDir()
        try "# rule: x.broken\n# title: t\n# refs: r\n# profiles: all\n!mode scenario\nbogus_event\n".write(toFile: dir + "/x.vfs", atomically: true, encoding: .utf8)
        let r = try CLI.run(["conform", "--corpus", dir])
        #expect(r.code == 2 || r.code == 1, "\(r.out)\(r.err)")
        #expect(r.out.contains("\(dir)/x.vfs:6:1: unknown event 'bogus_event'"), "\(r.out)")
    }

    @Test("a recording made where VFIO was not usable says so once, not only 'every event divergent'")
    func noVFIOInRecording() throws {
        let s = try Self.scenario("open /dev/vfio/vfio -> ENOENT\nopen /dev/vfio/12 -> ENOENT\ncheck_extension fd=3 TYPE1v2 -> EBADF\n")
        let r = try CLI.run(["replay", s])
        #expect(r.code == 1, "\(r.out)\(r.err)")
        #expect(r.out.contains("every /dev/vfio open in the recording failed (ENOENT)"), "\(r.out)")
        let fine = try CLI.run(["replay", CLI.packageRoot + "/corpora/basic-tracking.vfs"])
        #expect(fine.code == 0 && !fine.out.contains("every /dev/vfio open"), "\(fine.out)")
        // One open failing among others that worked is an ordinary divergence.
        let one = try Self.scenario("open /dev/vfio/vfio -> 3\nopen /dev/vfio/12 -> ENOENT\n")
        #expect(!(try CLI.run(["replay", one])).out.contains("every /dev/vfio open"))
    }

    @Test("help is wrapped once, to the terminal's width: no line past it at 80 columns, a paragraph one line at 200",
          arguments: ["replay", "conform", "fuzz", "record", "bisect", "bisect-check", "host", "diff", "cat", "verify", "profiles", "compile"])
    func helpWrapping(_ command: String) throws {
        let narrow = try CLI.run([command, "--help"], environment: ["COLUMNS": "80"])
        #expect(narrow.code == 0)
        for line in narrow.out.split(separator: "\n") where !line.hasPrefix("USAGE") {
            #expect(line.count <= 80, "\(command) at 80 columns: \(line.count): \(line)")
        }
        let wide = try CLI.run([command, "--help"], environment: ["COLUMNS": "200"])
        // The discussion's first paragraph fills the width: every line but its last is long.
        let paragraphs = wide.out.components(separatedBy: "\n\n")
        let first = try #require(paragraphs.dropFirst().first)
        for line in first.split(separator: "\n").dropLast() {
            #expect(line.count >= 150, "\(command) at 200 columns, a paragraph broken early:\n\(first)")
        }
    }

    @Test("a named pipe or /dev/stdin is read to its end like `-`, binary or text; a device is refused, naming it")
    func pipesAndDevices() throws {
        let dir = CLI.tempDir()
        let trace = dir + "/b.vft"
        #expect(try CLI.run(["compile", CLI.packageRoot + "/corpora/basic-tracking.vfs", "-o", trace]).code == 0)
        let q = { (s: String) in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let viaStdin = try CLI.run(["-c", "cat \(q(trace)) | \(q(CLI.binary)) verify /dev/stdin"], program: "/bin/bash")
        #expect(viaStdin.code == 0 && viaStdin.out.contains("/dev/stdin: intact: 19 events"), "\(viaStdin.out)\(viaStdin.err)")
        let substituted = try CLI.run(["-c", "\(q(CLI.binary)) replay <(\(q(CLI.binary)) cat \(q(trace)))"], program: "/bin/bash")
        #expect(substituted.code == 0 && substituted.out.contains("19 events, 19 compared, 0 divergent"), "\(substituted.out)\(substituted.err)")
        let device = try CLI.run(["cat", "/dev/zero"])
        #expect(device.code == 2 && device.err.contains("/dev/zero: a device"), "\(device.err)")
    }
}

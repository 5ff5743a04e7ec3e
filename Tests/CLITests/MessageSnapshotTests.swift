import Foundation
import Testing

/// The exact text of the messages a user meets with bad input (issue 17
/// item 6), against Tests/CLITests/Snapshots/messages.txt: a change to any
/// wording shows in review. Run in a scratch directory with relative names,
/// so the text does not depend on where the tests run.
@Suite("messages: snapshot of what bad input prints")
struct MessageSnapshotTests {
    @Test("each bad invocation's exit code and standard error match the snapshot")
    func snapshot() throws {
        let dir = CLI.tempDir()
        func file(_ name: String, _ text: String) throws { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        try file("s.vfs", try String(contentsOfFile: CLI.packageRoot + "/corpora/basic-tracking.vfs", encoding: .utf8))
        #expect(try CLI.run(["compile", "s.vfs", "-o", "t.vft"], directory: dir).code == 0)
        var damaged = try Data(contentsOf: URL(fileURLWithPath: dir + "/t.vft"))
        damaged = damaged.prefix(damaged.count - 40)
        try damaged.write(to: URL(fileURLWithPath: dir + "/damaged.vft"))
        try file("spaced.vfs", "open /dev/vfio/vfio -> 3\nmap_dma iova = 0x1 size=4K\n")
        try file("quoted.vfs", "open \"/dev/vfio/vfio\" -> 3\nget_api_version -> 0\n")
        try file("failed-opens.vfs", "open /dev/vfio/vfio -> ENOENT\nopen /dev/vfio/vfio -> ENOENT\n")
        try FileManager.default.createDirectory(atPath: dir + "/rules", withIntermediateDirectories: true)
        try file("rules/x.vfs", "# rule: x.broken\n# title: t\n# refs: r\n# profiles: all\n!mode scenario\nbogus_event\n")
        let invocations: [[String]] = [
            ["cat", "s.vfs"],
            ["replay", "damaged.vft"],
            ["verify", "damaged.vft"],
            ["cat", "t.vft", "--from", "-1"],
            ["replay", "s.vfs", "--max-divergences", "-1"],
            ["bisect-check", "s.vfs", "--backend", "vfio-typo"],
            ["replay", "spaced.vfs"],
            ["replay", "quoted.vfs"],
            ["replay", "failed-opens.vfs"],
            ["profiles", "--show", "5.8", "--compare", "5.8", "6.6"],
            ["conform", "--corpus", "rules"],
            ["cat", "missing.vft"],
            ["cat", "/dev/zero"],
            ["compile", "s.vfs", "-o", "s.vfs"],
            ["conform", "--color", "sometimes"],
            ["replay", "t.vft", "--profile", "4.19"],
        ]
        var text = ""
        for args in invocations {
            let r = try CLI.run(args, environment: ["COLUMNS": "100"], directory: dir)
            text += "$ vfiotrace \(args.joined(separator: " "))\nexit \(r.code)\n"
            if !r.err.isEmpty { text += r.err + (r.err.hasSuffix("\n") ? "" : "\n") }
            // A command whose finding is its report (conform) says it on stdout.
            if r.code != 0, r.err.isEmpty, !r.out.isEmpty { text += "(stdout)\n" + r.out }
            text += "\n"
        }
        try Snapshot.check(text, named: "messages.txt")
    }
}

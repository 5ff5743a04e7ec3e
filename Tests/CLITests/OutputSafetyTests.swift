import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Nothing the user has is lost through `-o`: outputs are written beside
/// the target and renamed on success, an output that is an input is
/// refused, and nothing the command did not create is removed.
@Suite("Outputs never destroy a file", .serialized)
struct OutputSafetyTests {
    static let good = "open /dev/vfio/vfio -> 3\nmarker \"x\"\n"
    static let bad = "open /dev/vfio/vfio -> 3\nmap_dma iova=zz size=4K\n"

    func write(_ text: String, _ path: String) { _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) }
    func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }
    func leftovers(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".vfiotrace-") }
    }

    @Test("compile with a syntax error leaves an existing output, a symlink's target and a device node as they were")
    func compileFailureKeepsOutputs() throws {
        let dir = CLI.tempDir()
        write(Self.good, dir + "/good.vfs")
        write(Self.bad, dir + "/bad.vfs")
        #expect(try CLI.run(["compile", dir + "/good.vfs", "-o", dir + "/kept.vft"]).code == 0)
        let before = try #require(bytes(dir + "/kept.vft"))
        let r = try CLI.run(["compile", dir + "/bad.vfs", "-o", dir + "/kept.vft"])
        #expect(r.code == 2 && r.err.contains("bad.vfs:2:"), "\(r.err)")
        #expect(bytes(dir + "/kept.vft") == before, "the existing trace was changed or removed")
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.vft", withDestinationPath: dir + "/kept.vft")
        #expect(try CLI.run(["compile", dir + "/bad.vfs", "-o", dir + "/link.vft"]).code == 2)
        #expect(bytes(dir + "/kept.vft") == before)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/link.vft")) == dir + "/kept.vft")
        #expect(leftovers(dir).isEmpty, "temporary files left: \(leftovers(dir))")
        // A compile through the link replaces the link's target, keeps the link.
        write(Self.good + "marker \"y\"\n", dir + "/more.vfs")
        #expect(try CLI.run(["compile", dir + "/more.vfs", "-o", dir + "/link.vft"]).code == 0)
        #expect(bytes(dir + "/kept.vft") != before)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/link.vft")) == dir + "/kept.vft")
    }

    @Test("a device node named by -o is written in place and never removed", .enabled(if: getuid() == 0, "needs root to make a device node"))
    func deviceNode() throws {
        let dir = CLI.tempDir()
        write(Self.bad, dir + "/bad.vfs")
        #expect(mknod(dir + "/null", S_IFCHR | 0o666, dev_t((1 << 8) | 3)) == 0)
        #expect(try CLI.run(["compile", dir + "/bad.vfs", "-o", dir + "/null"]).code == 2)
        var st = stat()
        #expect(stat(dir + "/null", &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR, "the device node is gone")
        write(Self.good, dir + "/good.vfs")
        #expect(try CLI.run(["compile", dir + "/good.vfs", "-o", dir + "/null"]).code == 0)
        #expect(stat(dir + "/null", &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR)
    }

    @Test("an output that is the command's own input is refused, and the input is untouched")
    func outputIsInput() throws {
        let dir = CLI.tempDir()
        write(Self.good, dir + "/s.vfs")
        let c = try CLI.run(["compile", dir + "/s.vfs", "-o", dir + "/s.vfs"])
        #expect(c.code == 2 && c.err.contains("is the input"), "\(c.err)")
        #expect(bytes(dir + "/s.vfs") == Data(Self.good.utf8))
        #expect(try CLI.run(["compile", dir + "/s.vfs", "-o", dir + "/t.vft"]).code == 0)
        let trace = try #require(bytes(dir + "/t.vft"))
        for args in [["replay", dir + "/t.vft", "-o", dir + "/t.vft"], ["recover", dir + "/t.vft", "-o", dir + "/t.vft"]] {
            let r = try CLI.run(args)
            #expect(r.code == 2 && r.err.contains("is the input"), "\(args): \(r.err)")
            #expect(bytes(dir + "/t.vft") == trace, "\(args) changed its input")
        }
        #expect(leftovers(dir).isEmpty)
    }

    @Test("a replay that fails part-way leaves no partial output and the old file as it was")
    func failedReplayLeavesNothing() throws {
        let dir = CLI.tempDir()
        write(Self.good, dir + "/s.vfs")
        #expect(try CLI.run(["compile", dir + "/s.vfs", "-o", dir + "/old.vft"]).code == 0)
        let before = try #require(bytes(dir + "/old.vft"))
        // A trace cut short: its last frame is incomplete.
        #expect(try CLI.run(["compile", dir + "/s.vfs", "-o", dir + "/t.vft"]).code == 0)
        let t = try #require(bytes(dir + "/t.vft"))
        _ = FileManager.default.createFile(atPath: dir + "/cut.vft", contents: t.prefix(t.count - 30))
        let r = try CLI.run(["replay", dir + "/cut.vft", "-o", dir + "/old.vft"])
        #expect(r.code == 2, "\(r.out)\(r.err)")
        #expect(bytes(dir + "/old.vft") == before)
        #expect(try CLI.run(["replay", dir + "/cut.vft", "-o", dir + "/new.vft"]).code == 2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/new.vft"))
        #expect(leftovers(dir).isEmpty)
        // And a successful one is there, readable, with the usual permissions.
        #expect(try CLI.run(["replay", dir + "/t.vft", "-o", dir + "/new.vft"]).code == 0)
        let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/new.vft")
        #expect((attrs[.posixPermissions] as? Int) == 0o644)
    }

    @Test("-o - writes the trace to standard output and the report to standard error; `-` reads binary standard input")
    func standardStreams() throws {
        let dir = CLI.tempDir()
        write(Self.good, dir + "/s.vfs")
        #expect(try CLI.run(["compile", dir + "/s.vfs", "-o", dir + "/s.vft"]).code == 0)
        let file = try #require(bytes(dir + "/s.vft"))
        let compiled = try CLI.run(["compile", dir + "/s.vfs", "-o", "-"])
        #expect(compiled.code == 0 && compiled.outBytes == file, "compile -o - differs from compile -o FILE: \(compiled.err)")
        #expect(leftovers(dir).isEmpty && !FileManager.default.fileExists(atPath: "-"))
        // replay and recover: the trace alone on stdout, their words on stderr.
        let replayed = try CLI.run(["replay", dir + "/s.vft", "-o", "-"])
        #expect(replayed.code == 0 && replayed.err.contains("2 events, 2 compared, 0 divergent"), "\(replayed.err)")
        let replayedCat = try CLI.run(["cat", "--no-header", "-"], stdinBytes: replayed.outBytes)
        #expect(replayedCat.code == 0 && replayedCat.out == "open /dev/vfio/vfio -> 3\nmarker \"x\"\n", "\(replayedCat.out)\(replayedCat.err)")
        let recovered = try CLI.run(["recover", dir + "/s.vft", "-o", "-"])
        #expect(recovered.code == 0 && recovered.err.contains("kept 2 events"), "\(recovered.err)")
        // Binary standard input, as for a file: cat, verify, info, diff.
        let cat = try CLI.run(["cat", "-"], stdinBytes: file)
        let catFile = try CLI.run(["cat", dir + "/s.vft"])
        #expect(cat.code == 0 && cat.out == catFile.out)
        let verify = try CLI.run(["verify", "-"], stdinBytes: recovered.outBytes)
        #expect(verify.code == 0 && verify.out.contains("-: intact: 2 events"), "\(verify.out)\(verify.err)")
        #expect(try CLI.run(["info", "-"], stdinBytes: file).code == 0)
        #expect(try CLI.run(["diff", "-", dir + "/s.vft"], stdinBytes: file).out.contains("0 divergent"))
        // The recorded program shares standard output: refused.
        let record = try CLI.run(["record", "-o", "-", "--", "true"])
        #expect(record.code == 2 && record.err.contains("shares standard output"), "\(record.err)")
        // conform -o - is the report on standard output.
        let conform = try CLI.run(["conform", "--rules", "bitmap.all-dirty", "-o", "-"])
        #expect(conform.code == 0 && conform.out.contains("PASS"), "\(conform.out)\(conform.err)")
    }
}

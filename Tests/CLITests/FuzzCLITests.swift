import Foundation
import Testing

@Suite("vfiotrace fuzz")
struct FuzzCLITests {
    @Test("one profile against another: divergences found, shrunk, each explained by a switch; exit 0; saved scenarios replay on the reference")
    func profiles() throws {
        let dir = CLI.tempDir()
        let r = try CLI.run(["fuzz", "--against", "5.10", "--profile", "latest", "--streams", "40", "--events", "100", "--save", dir])
        #expect(r.code == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("reference engine:5.10, candidate engine:latest"), "\(r.out)")
        #expect(r.out.contains("explained by the switch"), "\(r.out)")
        #expect(!r.out.contains("unexplained\n"), "\(r.out)")
        let saved = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".vfs") }
        #expect(!saved.isEmpty)
        for f in saved {
            let onReference = try CLI.run(["replay", dir + "/" + f, "--profile", "5.10"])
            #expect(onReference.code == 0, "\(f): \(onReference.out)")
            let onCandidate = try CLI.run(["replay", dir + "/" + f, "--profile", "latest"])
            #expect(onCandidate.code == 1, "\(f) should diverge on latest: \(onCandidate.out)")
        }
    }

    @Test("--emit writes the streams as scenarios without running them; the same seed, the same file")
    func emit() throws {
        let a = CLI.tempDir(), b = CLI.tempDir()
        for d in [a, b] {
            let r = try CLI.run(["fuzz", "--against", "6.6", "--seed", "42", "--streams", "2", "--events", "50", "--emit", d])
            #expect(r.code == 0 && r.out.contains("2 streams written"), "\(r.out)\(r.err)")
        }
        let first = try String(contentsOfFile: a + "/stream-42.vfs", encoding: .utf8)
        #expect(first == (try String(contentsOfFile: b + "/stream-42.vfs", encoding: .utf8)))
        #expect(FileManager.default.fileExists(atPath: a + "/stream-43.vfs"))
        let compiled = try CLI.run(["compile", a + "/stream-42.vfs", "-o", a + "/s.vft"])
        #expect(compiled.code == 0, "\(compiled.err)")
    }

    @Test("bad arguments: exit 2 with a message that says what to give")
    func badArguments() throws {
        let weights = try CLI.run(["fuzz", "--against", "5.10", "--weights", "maps=3"])
        #expect(weights.code == 2 && weights.err.contains("lifecycle, map, unmap, dirty, pin"), "\(weights.err)")
        let noReference = try CLI.run(["fuzz"])
        #expect(noReference.code == 2 && noReference.err.contains("--against PROFILE"), "\(noReference.err)")
        let profile = try CLI.run(["fuzz", "--against", "4.19"])
        #expect(profile.code == 2 && profile.err.contains("unknown profile '4.19'"), "\(profile.err)")
    }
}

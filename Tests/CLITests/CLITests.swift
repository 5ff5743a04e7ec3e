import Foundation
import Testing

/// Runs the real `vfiotrace` executable, as a user would.
struct CLI {
    static let binary: String = {
        // Another build of the executable (a release build) when named.
        if let named = ProcessInfo.processInfo.environment["VFIOTRACE_BINARY"] { return named }
        // The test bundle sits next to the package's executables.
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("vfiotrace").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return dir.appendingPathComponent("vfiotrace").path
    }()

    struct Result {
        var code: Int32
        var out: String
        var err: String
        /// Standard output as bytes (a trace written to `-o -`).
        var outBytes = Data()
    }

    static func run(_ args: [String], stdin: String? = nil, program: String = binary, environment: [String: String] = [:],
                    directory: String? = nil) throws -> Result {
        try run(args, stdinBytes: stdin.map { Data($0.utf8) }, program: program, environment: environment, directory: directory)
    }

    /// `environment` is added to (or overrides) this process's; `program`
    /// is vfiotrace unless another is named (a wrapper that runs it).
    static func run(_ args: [String], stdinBytes stdin: Data?, program: String = binary, environment: [String: String] = [:],
                    directory: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let o = Pipe(), e = Pipe(), i = Pipe()
        p.standardOutput = o
        p.standardError = e
        p.standardInput = i
        try p.run()
        if let stdin { i.fileHandleForWriting.write(stdin) }
        try i.fileHandleForWriting.close()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        let err = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(code: p.terminationStatus, out: String(decoding: out, as: UTF8.self), err: String(decoding: err, as: UTF8.self),
                      outBytes: out)
    }

    /// Runs vfiotrace with a pseudo-terminal on its standard streams
    /// (util-linux `script`); what the terminal showed, carriage returns
    /// as line ends.
    static func onTerminal(_ args: [String], environment: [String: String]) throws -> (code: Int32, screen: String) {
        let quoted = ([binary] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let r = try run(["-qefc", quoted, "/dev/null"], program: "/usr/bin/script", environment: environment)
        return (r.code, r.out.replacingOccurrences(of: "\r", with: "\n"))
    }

    static func tempDir() -> String {
        let path = NSTemporaryDirectory() + "vfiotrace-cli-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The package root, for the shipped corpus.
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
}

@Suite("vfiotrace command line", .serialized)
struct CLITests {
    @Test("the executable was built")
    func binaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: CLI.binary), "no vfiotrace at \(CLI.binary)")
    }

    @Test("every shipped scenario compiles, verifies, and cat/compile round-trips byte for byte")
    func corpus() throws {
        let dir = CLI.tempDir()
        let corpus = CLI.packageRoot + "/corpora"
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus).filter { $0.hasSuffix(".vfs") }.sorted()
        #expect(files.count >= 3)
        for f in files {
            let a = dir + "/a.vft", b = dir + "/b.vft", t = dir + "/t.vfs"
            let c = try CLI.run(["compile", corpus + "/" + f, "-o", a])
            #expect(c.code == 0, "\(f): \(c.err)")
            let v = try CLI.run(["verify", a])
            #expect(v.code == 0 && v.out.contains("intact"), "\(f): \(v.out)\(v.err)")
            let cat = try CLI.run(["cat", a])
            #expect(cat.code == 0)
            _ = FileManager.default.createFile(atPath: t, contents: cat.out.data(using: .utf8))
            #expect(try CLI.run(["compile", t, "-o", b]).code == 0)
            #expect(FileManager.default.contents(atPath: a) == FileManager.default.contents(atPath: b), "\(f): cat|compile changed the bytes")
        }
    }

    @Test("cat --from/--count prints the requested window")
    func window() throws {
        let dir = CLI.tempDir()
        let text = (0..<100).map { "marker \"m\($0)\"" }.joined(separator: "\n")
        #expect(try CLI.run(["compile", "-", "-o", dir + "/m.vft"], stdin: text).code == 0)
        let r = try CLI.run(["cat", dir + "/m.vft", "--from", "40", "--count", "3", "--no-header"])
        #expect(r.code == 0)
        #expect(r.out == "#40 marker \"m40\"\nmarker \"m41\"\nmarker \"m42\"\n")
    }

    @Test("bad input: one line naming the file and offset, exit 2", arguments: [
        ("empty", [], "empty"),
        ("garbage", Array("definitely not a trace".utf8), "offset 0"),
        ("newer", [], "newer"),
    ] as [(String, [UInt8], String)])
    func badInput(name: String, bytes: [UInt8], needle: String) throws {
        let dir = CLI.tempDir()
        let path = dir + "/" + name + ".vft"
        if name == "newer" {
            // A header claiming format 9.0.
            #expect(try CLI.run(["compile", "-", "-o", path], stdin: "marker \"x\"").code == 0)
            var b = [UInt8](FileManager.default.contents(atPath: path)!)
            b[16] = 9
            _ = FileManager.default.createFile(atPath: path, contents: Data(b))
        } else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        }
        for cmd in ["cat", "info", "verify"] {
            let r = try CLI.run([cmd, path])
            #expect(r.code == 2, "\(cmd) \(name): exit \(r.code)")
            #expect(r.err.contains(path) && r.err.contains(needle), "\(cmd) \(name): \(r.err)")
            #expect(r.err.split(separator: "\n").count == 1, "\(cmd) \(name): more than one line: \(r.err)")
        }
    }

    @Test("a missing file and a bad scenario are exit 2 with the place named")
    func missingAndBadScenario() throws {
        let r = try CLI.run(["cat", "/nonexistent/x.vft"])
        #expect(r.code == 2)
        #expect(r.err.contains("/nonexistent/x.vft") && r.err.contains("ENOENT"))
        let dir = CLI.tempDir()
        let s = try CLI.run(["compile", "-", "-o", dir + "/x.vft"], stdin: "open /dev/vfio/vfio -> 3\nmap_dma iova=zz size=4K\n")
        #expect(s.code == 2)
        #expect(s.err.contains("-:2:"), "\(s.err)")
        let u = try CLI.run(["cat"])
        #expect(u.code == 2, "usage errors are exit 2, not argument-parser's 64")
    }

    @Test("verify says 1 for a killed writer's file and recover makes it whole")
    func verifyAndRecover() throws {
        let dir = CLI.tempDir()
        let text = (0..<3000).map { "pin group=3 iova=\(String(0x100000 + $0 * 4096, radix: 16, uppercase: false).withHexPrefix) -> 1" }
            .joined(separator: "\n")
        #expect(try CLI.run(["compile", "-", "-o", dir + "/p.vft"], stdin: text).code == 0)
        var b = [UInt8](FileManager.default.contents(atPath: dir + "/p.vft")!)
        b.removeLast(b.count / 3) // as if the writer died mid-frame, before the index
        _ = FileManager.default.createFile(atPath: dir + "/cut.vft", contents: Data(b))
        let v = try CLI.run(["verify", dir + "/cut.vft"])
        #expect(v.code == 1)
        #expect(v.out.contains("incomplete") || v.out.contains("truncated"), "\(v.out)")
        let r = try CLI.run(["recover", dir + "/cut.vft", "-o", dir + "/rec.vft"])
        #expect(r.code == 0, "\(r.err)")
        #expect(try CLI.run(["verify", dir + "/rec.vft"]).code == 0)
        let cat = try CLI.run(["cat", dir + "/rec.vft", "--no-header"])
        #expect(cat.out.contains("loss count="))
        let info = try CLI.run(["info", dir + "/rec.vft"])
        #expect(info.code == 0 && info.out.contains("loss records:"), "\(info.out)")
    }

    @Test("info and verify count what loss records say is missing")
    func lossRecords() throws {
        let dir = CLI.tempDir()
        let text = """
        open /dev/vfio/vfio -> 3
        loss count=5 reason="the kernel's trace buffer on CPU 1 overflowed"
        pin group=3 iova=0x1000 -> 1
        loss count=0 reason="a return was lost"
        """
        #expect(try CLI.run(["compile", "-", "-o", dir + "/l.vft"], stdin: text).code == 0)
        let info = try CLI.run(["info", dir + "/l.vft"])
        #expect(info.out.contains("loss records:  2 (5 events lost, 1 record of unknown count)"), "\(info.out)")
        let v = try CLI.run(["verify", dir + "/l.vft"])
        #expect(v.code == 0, "an intact trace that says what it lost is intact")
        #expect(v.out.contains("event 1 is a loss record: 5 events lost: the kernel's trace buffer on CPU 1 overflowed"), "\(v.out)")
        #expect(v.out.contains("event 3 is a loss record: events lost, count unknown"), "\(v.out)")
        #expect(v.out.contains("intact: 4 events in 1 frames; 2 (5 events lost"), "\(v.out)")
    }

    @Test("--help explains with examples")
    func help() throws {
        for cmd in [[], ["compile"], ["cat"], ["info"], ["verify"], ["recover"]] {
            let r = try CLI.run(cmd + ["--help"])
            #expect(r.code == 0)
            #expect(r.out.contains("Example"), "\(cmd): \(r.out)")
        }
    }
}

extension String {
    var withHexPrefix: String { "0x" + self }
}

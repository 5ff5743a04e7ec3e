import Foundation
import Testing

/// Runs the real `vfiotrace` executable, as a user would.
struct CLI {
    static let binary: String = {
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
    }

    static func run(_ args: [String], stdin: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let o = Pipe(), e = Pipe(), i = Pipe()
        p.standardOutput = o
        p.standardError = e
        p.standardInput = i
        try p.run()
        if let stdin { i.fileHandleForWriting.write(stdin.data(using: .utf8)!) }
        try i.fileHandleForWriting.close()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        let err = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(code: p.terminationStatus, out: String(decoding: out, as: UTF8.self), err: String(decoding: err, as: UTF8.self))
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

@Suite("vfiotrace replay, diff and profiles", .serialized)
struct ReplayCLITests {
    static func corpus(_ name: String) -> String { CLI.packageRoot + "/corpora/" + name }

    static func write(_ text: String, in dir: String, as name: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("every shipped scenario replays with no divergence on the engine, from text and from its compiled trace")
    func corpusReplays() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = try FileManager.default.contentsOfDirectory(atPath: CLI.packageRoot + "/corpora").filter { $0.hasSuffix(".vfs") }
        #expect(!names.isEmpty)
        for name in names {
            let r = try CLI.run(["replay", Self.corpus(name)])
            #expect(r.code == 0, "\(name): \(r.out)\(r.err)")
            #expect(r.out.contains(" 0 divergent"), "\(name): \(r.out)")
            let vft = dir + "/" + name + ".vft"
            #expect(try CLI.run(["compile", Self.corpus(name), "-o", vft]).code == 0)
            #expect(try CLI.run(["replay", vft]).code == 0, "\(name) compiled")
        }
    }

    @Test("a wrong expectation exits 1 and names the event, the pages and their IOVAs")
    func divergenceReport() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.write("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container kind=iommu -> ok
        set_iommu TYPE1v2 -> ok
        map_dma iova=0x100000 size=1M -> ok
        dirty start -> ok
        dirty get iova=0x100000 size=1M -> ok dirty=[0..127]
        dirty stop -> EINVAL
        """, in: dir, as: "wrong.vfs")
        let r = try CLI.run(["replay", path])
        #expect(r.code == 1)
        #expect(r.out.contains("#6 dirty get fd=3 iova=0x100000 size=1M"), "\(r.out)")
        #expect(r.out.contains("pages 128..255 (iova 0x180000..0x1fffff) expected clean, got dirty"), "\(r.out)")
        #expect(r.out.contains("result: expected EINVAL, got ok"), "\(r.out)")
        #expect(r.out.contains("8 events, 8 compared, 2 divergent"), "\(r.out)")
        let quiet = try CLI.run(["replay", path, "--max-divergences", "0"])
        #expect(quiet.code == 1 && !quiet.out.contains("#6"))
    }

    @Test("--profile picks the kernel behaviour; auto reads the header's kernel release")
    func profiles() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let flagsZero = "open /dev/vfio/vfio -> 3\nopen /dev/vfio/20 -> 4\ngroup_set_container kind=emulated -> ok\nset_iommu TYPE1v2 -> ok\ndirty flags=0 -> EINVAL\n"
        let plain = try Self.write(flagsZero, in: dir, as: "z.vfs")
        #expect(try CLI.run(["replay", plain, "--profile", "5.10"]).code == 0)
        let old = try CLI.run(["replay", plain, "--profile", "5.8"])
        #expect(old.code == 1 && old.out.contains("result: expected EINVAL, got ENOTTY"), "\(old.out)")
        let on58 = try Self.write("!kernel 5.8.18-100.fc31.x86_64\n" + flagsZero, in: dir, as: "k.vfs")
        let auto = try CLI.run(["replay", on58])
        #expect(auto.code == 1 && auto.out.contains("engine:5.8 (auto: kernel 5.8.18"), "\(auto.out)")
        let bad = try CLI.run(["replay", plain, "--profile", "4.19"])
        #expect(bad.code == 2 && bad.err.contains("unknown profile '4.19'"), "\(bad.err)")
        let backend = try CLI.run(["replay", plain, "--backend", "qemu"])
        #expect(backend.code == 2 && backend.err.contains("unknown backend"))
        let unnamed = try CLI.run(["replay", plain, "--backend", "vfio"])
        #expect(unnamed.code == 2 && unnamed.err.contains("--group /dev/vfio/N or --device BDF"), "\(unnamed.err)")
        let absent = try CLI.run(["replay", plain, "--backend", "vfio", "--group", "/dev/vfio/4242"])
        #expect(absent.code == 2 && absent.err.contains("/dev/vfio/4242"), "\(absent.err)")
        let nodev = try CLI.run(["replay", plain, "--backend", "vfio", "--device", "0000:99:99.9"])
        #expect(nodev.code == 2 && nodev.err.contains("0000:99:99.9"), "\(nodev.err)")
        let list = try CLI.run(["profiles"])
        #expect(list.code == 0 && list.out.contains("v16") && list.out.contains("latest"))
        let cmp = try CLI.run(["profiles", "--compare", "5.10", "5.12"])
        #expect(cmp.out.contains("dirty-scope: 5.10 pinned-scope-flag, 5.12 non-pinned-group-count"), "\(cmp.out)")
        #expect(!cmp.out.contains("query-range"))
    }

    @Test("replay --output writes the engine's outcomes; diff against it is clean, against another profile it is not")
    func outputAndDiff() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = Self.corpus("pinned-pages.vfs")
        let latest = dir + "/latest.vft", old = dir + "/58.vft"
        #expect(try CLI.run(["replay", src, "-o", latest]).code == 0)
        #expect(try CLI.run(["replay", src, "--profile", "5.8", "-o", old]).code == 1)
        let same = try CLI.run(["diff", src, latest])
        #expect(same.code == 0, "\(same.out)")
        let d = try CLI.run(["diff", latest, old])
        #expect(d.code == 1)
        #expect(d.out.contains("pages 32..33 (iova 0x20000..0x21fff) expected dirty, got clean"), "\(d.out)")
        let cat = try CLI.run(["cat", old])
        #expect(cat.out.contains("!mode replay:engine:5.8"))
        let short = try Self.write("open /dev/vfio/vfio -> 3\n", in: dir, as: "short.vfs")
        let shorter = try CLI.run(["diff", src, short])
        #expect(shorter.code == 1 && shorter.out.contains("ends 15 events early"), "\(shorter.out)")
        let missing = try CLI.run(["diff", src, dir + "/nope.vft"])
        #expect(missing.code == 2 && missing.err.contains("nope.vft"))
    }

    @Test("lenient comparison stops counting bits outside every mapping")
    func lenient() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.write("""
        open /dev/vfio/vfio -> 3
        open /dev/vfio/20 -> 4
        group_set_container kind=emulated -> ok
        set_iommu TYPE1v2 -> ok
        group_get_device_fd name="m" -> 5
        map_dma iova=0x100000 size=280K -> ok
        dirty start -> ok
        dma_rw group=20 iova=0x100000 len=280K write -> ok
        dirty get iova=0xc4000 size=0x82000 -> ok dirty=[60..129]
        dirty get iova=0x100000 size=280K -> ok dirty=[]
        """, in: dir, as: "residue.vfs")
        let strict = try CLI.run(["replay", path])
        #expect(strict.code == 1 && strict.out.contains("pages 70..127 (iova 0x146000..0x17ffff) outside any mapping expected clean, got dirty"), "\(strict.out)")
        let lenient = try CLI.run(["replay", path, "--lenient"])
        #expect(lenient.code == 0, "\(lenient.out)")
        #expect(lenient.out.contains("1 differing only outside mappings"), "\(lenient.out)")
    }
}

@Suite("Recordings from real kernels", .serialized)
struct RealKernelCorpusTests {
    @Test("every recording in corpora/real replays on the engine with the profile auto picks, outcome for outcome")
    func engineMatchesRealKernels() throws {
        let base = CLI.packageRoot + "/corpora/real"
        let kernels = try FileManager.default.contentsOfDirectory(atPath: base)
        #expect(kernels.contains { $0.hasPrefix("6.1.") } && kernels.contains { $0.hasPrefix("6.12.") }, "\(kernels)")
        for k in kernels {
            for f in try FileManager.default.contentsOfDirectory(atPath: base + "/" + k) where f.hasSuffix(".vft") {
                let r = try CLI.run(["replay", base + "/" + k + "/" + f])
                #expect(r.code == 0, "\(k)/\(f): \(r.out)\(r.err)")
                #expect(r.out.contains("auto: kernel \(k)"), "\(k)/\(f): \(r.out)")
            }
        }
    }

    @Test("the kept record --pins recordings hold the kernel's own pin events, from kprobes")
    func kprobeRecordings() throws {
        let base = CLI.packageRoot + "/corpora/real"
        var seen = 0
        for k in try FileManager.default.contentsOfDirectory(atPath: base) {
            for f in try FileManager.default.contentsOfDirectory(atPath: base + "/" + k) where f.hasSuffix(".pins.vft") {
                let cat = try CLI.run(["cat", base + "/" + k + "/" + f])
                #expect(cat.out.contains("!mode ptrace+kprobes"), "\(k)/\(f)")
                #expect(cat.out.contains(" pin group=") || cat.out.contains(" dma_rw group="), "\(k)/\(f)")
                // The test device's requests are raw under --pins: the kernel's events stand for them.
                #expect(cat.out.contains("req=0xc0203bf0"), "\(k)/\(f)")
                seen += 1
            }
        }
        #expect(seen >= 6, "pinned-pages, -scope and -clubbing on both kernels")
    }
}

@Suite("vfiotrace conform", .serialized)
struct ConformCLITests {
    static let rules = CLI.packageRoot + "/corpora/rules"

    @Test("with no arguments: every rule on the engine's latest profile, a summary line, exit 0")
    func defaultRun() throws {
        let r = try CLI.run(["conform", "--corpus", Self.rules])
        #expect(r.code == 0, "\(r.out)\(r.err)")
        let summary = r.out.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.contains("rules on engine:latest") && summary.contains("0 FAIL") && summary.contains("0 BROK"), "\(summary)")
        #expect(r.out.contains("PASS pgsize.get-larger: "))
    }

    @Test("--profile all prints the rules x profiles matrix; CONF where a rule does not apply")
    func matrix() throws {
        let r = try CLI.run(["conform", "--corpus", Self.rules, "--profile", "all", "--rules", "ioctl.flags-zero"])
        #expect(r.code == 0, "\(r.out)")
        #expect(r.out.contains("v16") && r.out.contains("latest"))
        #expect(r.out.split(separator: "\n").contains { $0.hasPrefix("ioctl.flags-zero") && $0.contains("PASS") })
        let conf = try CLI.run(["conform", "--corpus", Self.rules, "--profile", "all", "--rules", "ioctl.get-wrap"])
        #expect(conf.out.contains("CONF"), "\(conf.out)")
    }

    @Test("a wrong expectation is FAIL (exit 1) with the first divergence; an unreadable scenario is BROK (exit 2)")
    func verdictsAndExitCodes() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        # rule: demo.wrong
        # title: a deliberately wrong expectation
        # refs: test
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container kind=iommu -> ok
        set_iommu TYPE1v2 -> ok
        dirty flags=0 -> ENOTTY
        """.write(toFile: dir + "/wrong.vfs", atomically: true, encoding: .utf8)
        let fail = try CLI.run(["conform", "--corpus", dir])
        #expect(fail.code == 1, "\(fail.out)")
        #expect(fail.out.contains("FAIL demo.wrong") && fail.out.contains("result: expected ENOTTY, got EINVAL"), "\(fail.out)")
        try "# rule: demo.brok\n# title: broken\n# refs: test\nmap_dma iova=zz\n".write(toFile: dir + "/brok.vfs", atomically: true, encoding: .utf8)
        let brok = try CLI.run(["conform", "--corpus", dir])
        #expect(brok.code == 2 && brok.out.contains("BROK demo.brok"), "\(brok.out)")
        let none = try CLI.run(["conform", "--corpus", Self.rules, "--rules", "nothing.*"])
        #expect(none.code == 2 && none.err.contains("no rule matches"))
        let badShard = try CLI.run(["conform", "--shard", "3/2"])
        #expect(badShard.code == 2 && badShard.err.contains("--shard"))
        let noCorpus = try CLI.run(["conform", "--corpus", dir + "/missing"])
        #expect(noCorpus.code == 2 && noCorpus.err.contains("missing"))
    }

    @Test("KTAP marks CONF as SKIP and FAIL as not ok; JSON has one object per rule; shards add up")
    func formats() throws {
        let ktap = try CLI.run(["conform", "--corpus", Self.rules, "--profile", "v16", "--format", "ktap"])
        let lines = ktap.out.split(separator: "\n").map(String.init)
        #expect(lines.first == "KTAP version 1")
        let plan = try #require(lines.first { $0.hasPrefix("1..") })
        let n = Int(plan.dropFirst(3))!
        #expect(lines.filter { $0.hasPrefix("ok ") || $0.hasPrefix("not ok ") }.count == n)
        #expect(lines.contains { $0.hasPrefix("ok ") && $0.contains(" # SKIP ") })
        let json = try CLI.run(["conform", "--corpus", Self.rules, "--format", "json"])
        let objects = json.out.split(separator: "\n")
        #expect(objects.count == n)
        for o in objects {
            let v = try JSONSerialization.jsonObject(with: Data(o.utf8)) as? [String: Any]
            #expect(v?["verdict"] as? String == "PASS" && v?["rule"] is String)
        }
        var seen: [String] = []
        for i in 1...3 {
            let part = try CLI.run(["conform", "--corpus", Self.rules, "--format", "json", "--shard", "\(i)/3"])
            seen += part.out.split(separator: "\n").map { String($0) }
        }
        #expect(seen.count == n && Set(seen).count == n)
    }
}

@Suite("vfiotrace bisect and bisect-check", .serialized)
struct BisectCLITests {
    static func corpus(_ p: String) -> String { CLI.packageRoot + "/corpora/" + p }

    @Test("bisect names every change point along the profiles with the first differing event")
    func profiles() throws {
        let r = try CLI.run(["bisect", Self.corpus("pinned-scope.vfs"), "--profiles", "5.8,5.10,5.12,latest"])
        #expect(r.code == 1, "\(r.out)\(r.err)")
        #expect(r.out.contains("FIRST CHANGE 5.8 -> 5.10 at event #16"), "\(r.out)")
        #expect(r.out.contains("change 5.10 -> 5.12 at event #"), "\(r.out)")
        #expect(r.out.contains("same  5.12 -> latest"))
        let none = try CLI.run(["bisect", Self.corpus("basic-tracking.vfs"), "--profiles", "5.10,5.12,latest"])
        #expect(none.code == 0 && none.out.contains("no change across 5.10, 5.12, latest"), "\(none.out)")
        let bad = try CLI.run(["bisect", Self.corpus("basic-tracking.vfs"), "--profiles", "5.10,9.9"])
        #expect(bad.code == 2 && bad.err.contains("unknown profile '9.9'"))
    }

    @Test("bisect-check answers 0 good, 1 bad, 125 skip, and nothing else")
    func exitCodes() throws {
        let real61 = Self.corpus("real/6.1.0-56-amd64/lab-probes.vft")
        let real612 = Self.corpus("real/6.12.117+deb12-amd64/lab-probes.vft")
        let probes = Self.corpus("lab-probes.vfs")
        #expect(try CLI.run(["bisect-check", probes, "--expect", real612, "--backend", "engine", "--profile", "6.6"]).code == 0)
        let bad = try CLI.run(["bisect-check", probes, "--expect", real61, "--backend", "engine", "--profile", "6.6"])
        #expect(bad.code == 1 && bad.out.contains("info.argsz: expected 116, got 120"), "\(bad.out)")
        #expect(try CLI.run(["bisect-check", "--rule", "ioctl.flags-zero", "--backend", "engine", "--profile", "5.8", "--corpus", CLI.packageRoot + "/corpora/rules"]).code == 0)
        for args in [["bisect-check"], ["bisect-check", "--bogus"], ["bisect-check", "--rule", "no.such", "--backend", "engine", "--corpus", CLI.packageRoot + "/corpora/rules"],
                     ["bisect-check", probes, "--expect", real612, "--group", "/dev/vfio/4242"],
                     ["bisect-check", "--rule", "ioctl.get-span", "--backend", "engine", "--profile", "v16", "--corpus", CLI.packageRoot + "/corpora/rules", "--max-divergences", "x"]] {
            let r = try CLI.run(args)
            #expect(r.code == 125, "\(args): \(r.code) \(r.err)")
        }
    }
}

@Suite("vfiotrace record", .serialized)
struct RecordCLITests {
    @Test("records VFIO opens of a program and its children (forks followed), passes the exit status through")
    func opensAndExitStatus() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/t.vft"
        // No VFIO on the test machine: the opens fail, and are recorded.
        let r = try CLI.run(["record", "-o", t, "--", "sh", "-c", "cat /dev/vfio/vfio; (cat /dev/vfio/42); cat /etc/hostname; exit 3"])
        #expect(r.code == 3, "\(r.err)")
        #expect(r.err.contains("recorded 2 events"), "\(r.err)")
        let cat = try CLI.run(["cat", t])
        #expect(cat.out.contains("!mode ptrace"))
        #expect(cat.out.contains("open /dev/vfio/vfio -> ENOENT") && cat.out.contains("open /dev/vfio/42 -> ENOENT"), "\(cat.out)")
        #expect(!cat.out.contains("hostname"))
        #expect(try CLI.run(["verify", t]).code == 0)
    }

    @Test("a program that cannot be run is reported; no command is a usage error")
    func errors() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = try CLI.run(["record", "-o", dir + "/m.vft", "--", "/nonexistent/program"])
        #expect(missing.code == 127, "\(missing.code) \(missing.err)")
        let none = try CLI.run(["record", "-o", dir + "/n.vft"])
        #expect(none.code == 2 && none.err.contains("nothing to run"))
    }

    @Test("a recorder killed with SIGKILL leaves a trace whose closed frames are readable")
    func killedRecorder() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/k.vft"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["record", "-o", t, "--", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do cat /dev/vfio/vfio 2>/dev/null; done; sleep 4"]
        try p.run()
        // The opens happen at once; the writer closes a frame within 250 ms.
        usleep(1_500_000)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let cat = try CLI.run(["cat", t])
        #expect(cat.out.components(separatedBy: "open /dev/vfio/vfio -> ENOENT").count - 1 == 8, "\(cat.out)\(cat.err)")
        let verify = try CLI.run(["verify", t])
        #expect(verify.code == 1, "no index after SIGKILL: \(verify.out)")
        #expect(try CLI.run(["recover", t, "-o", dir + "/saved.vft"]).code == 0)
    }

    /// Only the dispositions are compared: the mask a child gets from
    /// Foundation's Process depends on the spawning thread, so two spawns
    /// from a test process need not agree (the recorder passes its own on).
    @Test("the program gets the signal dispositions it would have had without the recorder")
    func signalsRestored() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let show = "grep -E '^SigIgn' /proc/$$/status"
        let direct = Process()
        direct.executableURL = URL(fileURLWithPath: "/bin/sh")
        direct.arguments = ["-c", show + " > \(dir)/direct"]
        try direct.run()
        direct.waitUntilExit()
        let r = try CLI.run(["record", "-o", dir + "/s.vft", "--", "sh", "-c", show + " > \(dir)/recorded"])
        #expect(r.code == 0, "\(r.err)")
        let a = try String(contentsOfFile: dir + "/direct", encoding: .utf8)
        let b = try String(contentsOfFile: dir + "/recorded", encoding: .utf8)
        #expect(a.contains("SigIgn") && a == b, "direct:\n\(a)recorded:\n\(b)")
    }

    @Test("a trace that cannot be written (file size limit) stops recording, not the program")
    func writeFailure() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/f.vft"
        // 2 KiB allowed; a few thousand recorded opens in frames closed every 250 ms exceed it.
        let inner = "i=0; while [ $i -lt 400 ]; do cat /dev/vfio/vfio 2>/dev/null; i=$((i+1)); done; touch \(dir)/done; exit 5"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "ulimit -f 2; exec \"$0\" record -o \(t) -- sh -c '\(inner)'", CLI.binary]
        let e = Pipe()
        p.standardError = e
        try p.run()
        let err = String(decoding: e.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 2, "\(err)")
        #expect(err.contains(t) && err.contains("writing the trace failed") && err.contains("exited 5"), "\(err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/done"), "the program must run to its end")
        // What was written before the limit is kept.
        let rec = try CLI.run(["recover", t, "-o", dir + "/kept.vft"])
        #expect(rec.code == 0, "\(rec.err)")
        #expect(try CLI.run(["cat", dir + "/kept.vft"]).out.contains("open /dev/vfio/vfio -> ENOENT"))
    }
}

@Suite("vfiotrace record --pid", .serialized)
struct RecordAttachTests {
    @Test("attaches to a running process, follows its children, and on SIGINT detaches leaving it running")
    func attachAndDetach() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = Process()
        target.executableURL = URL(fileURLWithPath: "/bin/sh")
        target.arguments = ["-c", "while true; do cat /dev/vfio/vfio 2>/dev/null; sleep 0.1; done"]
        try target.run()
        defer { target.terminate() }
        let t = dir + "/a.vft"
        let rec = Process()
        rec.executableURL = URL(fileURLWithPath: CLI.binary)
        rec.arguments = ["record", "-o", t, "--pid", String(target.processIdentifier)]
        let err = Pipe()
        rec.standardError = err
        try rec.run()
        usleep(1_200_000)
        kill(rec.processIdentifier, SIGINT)
        rec.waitUntilExit()
        #expect(rec.terminationStatus == 0)
        #expect(target.isRunning, "the traced process must survive the detach")
        let cat = try CLI.run(["cat", t])
        let opens = cat.out.components(separatedBy: "open /dev/vfio/vfio -> ENOENT").count - 1
        #expect(opens >= 3, "\(cat.out)")
        #expect(try CLI.run(["verify", t]).code == 0)
        let missing = try CLI.run(["record", "-o", dir + "/x.vft", "--pid", "999999"])
        #expect(missing.code == 2 && missing.err.contains("999999"))
    }
}

@Suite("vfiotrace record --pins")
struct RecordPinsTests {
    /// This host has no VFIO driver loaded (or no tracefs), so --pins must
    /// refuse before it runs anything: exit 2, the reason, no trace. The
    /// lane where --pins really records is scripts/lab-lane (6.1, 6.12).
    @Test("refuses with the reason, before running the program, where the kernel cannot trace pins",
          .enabled(if: access("/sys/module/vfio", F_OK) != 0 || access("/sys/kernel/tracing/kprobe_events", F_OK) != 0,
                   "this host could really trace pins: the VM lab lane covers that"))
    func refusesWithoutVFIO() throws {
        let dir = CLI.tempDir()
        let r = try CLI.run(["record", "--pins", "-o", dir + "/p.vft", "--", "/bin/sh", "-c", "touch \(dir)/ran"])
        #expect(r.code == 2)
        #expect(r.err.contains("--pins"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"), "the program must not run unrecorded")
        #expect(!FileManager.default.fileExists(atPath: dir + "/p.vft"))
    }
}

@Suite("vfiotrace record: threads that exec", .serialized)
struct RecordExecTests {
    /// Built with the package (Tests/Fixtures/ThreadExec).
    static let fixture = (CLI.binary as NSString).deletingLastPathComponent + "/thread-exec-fixture"

    /// When a thread other than the leader execs, it takes over the
    /// leader's pid and its own id vanishes without an exit report; the
    /// execve's end is reported under the leader's pid. An attached
    /// recorder that keeps the leader's old syscall state takes that end
    /// for an entry and from then on reads every call backwards (it
    /// recorded cat's open as ENOSYS).
    @Test("a non-leader thread's exec: followed, recorded right, and the recording ends")
    func threadExec() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/e.vft"
        for attach in [false, true] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            var target: Process? = nil
            if attach {
                let tp = Process()
                tp.executableURL = URL(fileURLWithPath: Self.fixture)
                tp.arguments = ["1000", "/bin/cat", "/dev/vfio/vfio"]
                tp.standardError = FileHandle.nullDevice
                try tp.run()
                target = tp
                p.arguments = ["record", "-o", t, "--pid", String(tp.processIdentifier)]
            } else {
                p.arguments = ["record", "-o", t, "--", Self.fixture, "0", "/bin/cat", "/dev/vfio/vfio"]
            }
            p.standardError = FileHandle.nullDevice
            try p.run()
            var waited = 0
            while p.isRunning && waited < 200 { usleep(100_000); waited += 1 }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            if let target, target.isRunning { target.terminate() }
            #expect(waited < 200, "the recorder must end when the program does (attach: \(attach))")
            if !attach { #expect(p.terminationStatus == 1, "cat's exit status") }
            let cat = try CLI.run(["cat", t, "--no-header"])
            #expect(cat.out.hasSuffix("open /dev/vfio/vfio -> ENOENT\n"), "attach: \(attach): \(cat.out)")
        }
    }
}

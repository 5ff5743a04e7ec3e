import Foundation
import Testing

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

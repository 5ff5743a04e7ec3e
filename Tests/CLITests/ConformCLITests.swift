import Foundation
import Testing

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
        #expect(r.out.contains("same  5.10 -> 5.12"), "\(r.out)")
        #expect(r.out.contains("same  5.12 -> latest"))
        // Populate-on-detach: 5.8 loses the all-dirty pages, 5.10 stable and 5.12 report them.
        let detach = try CLI.run(["bisect", CLI.packageRoot + "/corpora/rules/scope.detach-populates.vfs", "--profiles", "5.8,5.10,5.12"])
        #expect(detach.code == 1 && detach.out.contains("FIRST CHANGE 5.8 -> 5.10 at event #12"), "\(detach.out)")
        #expect(detach.out.contains("pages 2..15 (iova 0x2000..0xffff) expected clean, got dirty"))
        #expect(detach.out.contains("same  5.10 -> 5.12"))
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

@Suite("conform: colour")
struct ConformColourTests {
    @Test("verdicts are coloured on a terminal only: not with NO_COLOR or TERM=dumb; --color always and never win over both")
    func colour() throws {
        let args = ["conform", "--rules", "repop.pinned-every-query"]
        let escape = "\u{1B}["
        func screen(_ extra: [String], _ env: [String: String]) throws -> String {
            let r = try CLI.onTerminal(args + extra, environment: ["CI": "", "TERM": "xterm", "NO_COLOR": ""].merging(env) { $1 })
            #expect(r.code == 0, "\(r.screen)")
            return r.screen
        }
        let plain = try screen([], [:])
        #expect(plain.contains(escape + "32mPASS"), "no colour on a terminal: \(plain.debugDescription)")
        #expect(!(try screen([], ["NO_COLOR": "1"])).contains(escape))
        #expect(!(try screen([], ["TERM": "dumb"])).contains(escape))
        #expect(try screen([], ["NO_COLOR": ""]).contains(escape), "an empty NO_COLOR does not count (no-color.org)")
        #expect(!(try screen(["--color", "never"], [:])).contains(escape))
        #expect(try screen(["--color", "always"], ["NO_COLOR": "1"]).contains(escape))
        let piped = try CLI.run(args)
        #expect(piped.code == 0 && !piped.out.contains(escape), "colour into a pipe")
        #expect(try CLI.run(args + ["--color", "always"]).out.contains(escape))
        let bad = try CLI.run(args + ["--color", "sometimes"])
        #expect(bad.code == 2 && bad.err.contains("'auto', 'always' or 'never'"), "\(bad.err)")
    }
}

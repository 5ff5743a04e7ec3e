import Conform
import Foundation
import Testing
import Trace
@testable import Replay

/// The real-kernel lane's verdicts (scripts/lab-lane): on each of bookworm's
/// kernels the guests replayed, recorded and checked every corpus scenario;
/// these tests say whether what came back holds up. Each failure names the
/// scenario, the kernel and the file.
@Suite("Lab lane: the corpus on real kernels", .enabled(if: Lab.out != nil, Comment(rawValue: Lab.skipReason)))
struct LabCorpusTests {
    @Test("there are lab results to judge (both bookworm kernels unless the lane was limited to one)")
    func present() {
        #expect(!Lab.releases.isEmpty, "no <release>/output.txt under \(Lab.out ?? "")")
        if Lab.env("VFIOTRACE_LAB_KERNEL").map({ $0 == "all" }) ?? true { #expect(Lab.releases.count >= 2, "\(Lab.releases)") }
        #expect(Lab.scenarios.count >= 7, "\(Lab.scenarios)")
    }

    @Test("real kernel = scenario: every replay exited 0 and its outcomes are the scenario's; the engine reproduces them",
          arguments: Lab.releases)
    func realReplays(release: String) throws {
        for n in Lab.scenarios {
            let rec = Lab.dir(release) + "/\(n).vft"
            #expect(Lab.rc(Lab.dir(release) + "/\(n).replay.rc") == 0, "\(n) on \(release): the real kernel disagrees with the scenario (\(n).replay.log)")
            guard Lab.exists(rec) else { Issue.record("\(n) on \(release): no recording came back"); continue }
            let (d, extra) = try Lab.diff(Lab.root + "/corpora/\(n).vfs", rec)
            #expect(d.clean && extra == 0, "\(n) on \(release): scenario vs real: \(d.why), \(extra) events more")
            let e = try Lab.engineReplay(rec)
            #expect(e.clean && e.compared > 0, "\(n) on \(release): the engine disagrees with the real kernel: \(e.why)")
        }
    }

    @Test("the ptrace recording of each replay replays on the real kernel and on the engine", arguments: Lab.releases)
    func ptraceRecordings(release: String) throws {
        for n in Lab.scenarios {
            let rec = Lab.dir(release) + "/\(n).rec.vft"
            guard Lab.rc(Lab.dir(release) + "/\(n).rec.record.rc") == 0, Lab.exists(rec) else {
                Issue.record("\(n) on \(release): the ptrace recording failed")
                continue
            }
            #expect(Lab.rc(Lab.dir(release) + "/\(n).rec.rc") == 0, "\(n) on \(release): the recording does not replay on the real kernel (\(n).rec.real)")
            let e = try Lab.engineReplay(rec)
            #expect(e.clean && e.compared > 0, "\(n) on \(release): the engine disagrees with the recording: \(e.why)")
        }
    }

    @Test("record --pins: the kernel's pin and dma_rw events are the calls the device was asked for; nothing lost; replays on real and engine",
          arguments: Lab.releases)
    func pinsRecordings(release: String) throws {
        for n in Lab.scenarios {
            let pins = Lab.dir(release) + "/\(n).pins.vft", rec = Lab.dir(release) + "/\(n).rec.vft"
            guard Lab.rc(Lab.dir(release) + "/\(n).pins.record.rc") == 0, Lab.exists(pins) else {
                Issue.record("\(n) on \(release): record --pins failed (\(n).pins.log)")
                continue
            }
            #expect(Lab.rc(Lab.dir(release) + "/\(n).pins.rc") == 0, "\(n) on \(release): the --pins recording does not replay on the real kernel")
            let e = try Lab.engineReplay(pins)
            #expect(e.clean, "\(n) on \(release): the engine disagrees with the --pins recording: \(e.why)")
            let scan = try TraceScan.run(TraceReader(path: pins))
            #expect(scan.losses.isEmpty, "\(n) on \(release): the --pins recording lost kernel events: \(scan.lossSummary ?? "")")
            guard Lab.exists(rec) else { continue }
            let asked = Lab.kernelCalls(try Lab.events(rec)), seen = Lab.kernelCalls(try Lab.events(pins))
            #expect(asked == seen, "\(n) on \(release): kernel events \(seen) differ from the device's requests \(asked)")
        }
    }

    @Test("the recordings equal the ones kept in corpora/real/<release>/ (a change means the kernel package changed)",
          .disabled(if: Lab.env("VFIOTRACE_LAB_UPDATING") != nil, "scripts/lab-lane --update replaces the kept recordings with this run's"),
          arguments: Lab.releases)
    func keptRecordings(release: String) throws {
        let keptDir = Lab.root + "/corpora/real/\(release)"
        for n in Lab.scenarios {
            let rec = Lab.dir(release) + "/\(n).vft"
            guard Lab.exists(rec) else { continue }
            guard Lab.exists(keptDir + "/\(n).vft") else {
                Issue.record("\(n) on \(release): no kept recording \(keptDir)/\(n).vft (run scripts/lab-lane --update)")
                continue
            }
            let (d, extra) = try Lab.diff(keptDir + "/\(n).vft", rec)
            #expect(d.clean && d.compared > 0 && extra == 0, "\(n) on \(release): differs from the kept recording: \(d.why), \(extra) events more")
            let pins = Lab.dir(release) + "/\(n).pins.vft"
            guard Lab.exists(pins), !Lab.kernelCalls(try Lab.events(pins)).isEmpty else { continue }
            guard Lab.exists(keptDir + "/\(n).pins.vft") else {
                Issue.record("\(n) --pins on \(release): no kept recording \(keptDir)/\(n).pins.vft (run scripts/lab-lane --update)")
                continue
            }
            let (p, pExtra) = try Lab.diff(keptDir + "/\(n).pins.vft", pins)
            #expect(p.clean && pExtra == 0, "\(n) --pins on \(release): differs from the kept recording: \(p.why), \(pExtra) events more")
        }
    }
}

/// The recorder's hard cases in the lab: attaching, losing events, a killed
/// tracee, an fd reused mid-call; and the rule catalogue on the kernel.
@Suite("Lab lane: the recorder and the catalogue on real kernels", .enabled(if: Lab.out != nil, Comment(rawValue: Lab.skipReason)))
struct LabRecorderTests {
    @Test("record --pins --pid: attached, the same kernel events as launched, and the engine agrees", arguments: Lab.releases)
    func attach(release: String) throws {
        let path = Lab.dir(release) + "/pins-attach.vft"
        guard Lab.rc(Lab.dir(release) + "/pins-attach.rc") == 0, Lab.exists(path) else {
            Issue.record("record --pins --pid on \(release) failed (pins-attach.log)")
            return
        }
        let attached = Lab.kernelCalls(try Lab.events(path))
        #expect(!attached.isEmpty)
        #expect(attached == Lab.kernelCalls(try Lab.events(Lab.dir(release) + "/pinned-pages.pins.vft")))
        let e = try Lab.engineReplay(path)
        #expect(e.clean, "record --pins --pid on \(release): \(e.why)")
    }

    /// scripts/lab-lane-guest's flood: 2000 one-page pins and unpins, then
    /// 4 pins of 512 pages each unpinned (512 kernel calls each).
    static let floodPins = 2004, floodUnpins = 2000 + 4 * 512
    /// The pins of killed.vfs, killed after 2 s (lab-lane-guest).
    static let killedPins = 40000

    @Test("a flood through a 4 KiB buffer: what the kernel dropped is counted in loss records", arguments: Lab.releases)
    func lossAccounting(release: String) throws {
        let path = Lab.dir(release) + "/flood.pins.vft"
        guard Lab.rc(Lab.dir(release) + "/flood.rc") == 0, Lab.exists(path) else {
            Issue.record("the flood was not recorded on \(release) (flood.log)")
            return
        }
        let scan = try TraceScan.run(TraceReader(path: path))
        let events = try Lab.events(path)
        let pins = Lab.pins(events)
        let unpins = events.filter { if case .unpin = $0.body { return true }; return false }.count
        let lost = scan.losses.eventsLost
        #expect(!scan.losses.isEmpty, "on \(release): nothing lost through a 4 KiB buffer: \(pins) pins, \(unpins) unpins kept")
        #expect(pins <= Self.floodPins && unpins <= Self.floodUnpins, "on \(release): more kernel events than calls made")
        // Every missing pin or unpin is at least one lost record.
        let missing = (Self.floodPins - pins) + (Self.floodUnpins - unpins)
        #expect(lost >= UInt64(missing), "on \(release): \(missing) kernel events missing, loss records count \(lost): \(scan.lossSummary ?? "none")")
    }

    @Test("a tracee killed mid-run: the recorder ends cleanly, the trace is intact and replays on the engine", arguments: Lab.releases)
    func killedTracee(release: String) throws {
        let path = Lab.dir(release) + "/killed.pins.vft"
        guard Lab.rc(Lab.dir(release) + "/killed.rc") == 0, Lab.exists(path) else {
            Issue.record("killed tracee on \(release): the recorder did not end cleanly (killed.log)")
            return
        }
        #expect(Lab.pins(try Lab.events(path)) < Self.killedPins, "on \(release): every pin was made: the workload ended before the kill")
        let scan = try TraceScan.run(TraceReader(path: path))
        #expect(scan.isIntact, "on \(release): \(scan.problems)")
        let e = try Lab.engineReplay(path)
        #expect(e.clean, "killed tracee on \(release): \(e.why)")
    }

    @Test("an fd closed and reused while another thread calls ioctls on it: every open recorded, no call that reached /dev/null kept as VFIO's",
          arguments: Lab.releases)
    func fdReuse(release: String) throws {
        let path = Lab.dir(release) + "/fdrace.vft"
        guard Lab.rc(Lab.dir(release) + "/fdrace.rc") == 0, Lab.exists(path) else {
            Issue.record("fd reuse on \(release): the program or the recording did not come through (fdrace.log)")
            return
        }
        #expect(try TraceScan.run(TraceReader(path: path)).isIntact)
        let events = try Lab.events(path)
        let opens = events.filter { if case .open(let o) = $0.body { return o.path == "/dev/vfio/vfio" && o.result != nil }; return false }
        let wrong = events.filter { if case .checkExtension(let c) = $0.body { return c.result == .error(.ENOTTY) }; return false }
        #expect(opens.count == 151, "on \(release): \(opens.count) opens of /dev/vfio/vfio recorded, the program made 151")
        #expect(wrong.isEmpty, "on \(release): \(wrong.count) calls that reached /dev/null recorded as VFIO calls: \(wrong.first.map(\.inputLine) ?? "")")
    }

    @Test("vfiotrace fuzz against the real kernel: 20000 random events in at most 90 s, no divergence from the engine; every corpora/fuzz case holds",
          arguments: Lab.releases)
    func fuzz(release: String) throws {
        let dir = Lab.dir(release)
        let text = (try? String(contentsOfFile: dir + "/fuzz.txt", encoding: .utf8)) ?? ""
        #expect(Lab.rc(dir + "/fuzz.rc") == 0, "on \(release): the engine diverged from the kernel (fuzz.txt; the shrunk cases are kept as corpora/fuzz/found-\(release)-*.vfs):\n\(text)")
        let events = text.split(separator: "\n").first { $0.contains(" streams, ") }
            .flatMap { line in line.split(separator: " ").firstIndex(of: "events").map { line.split(separator: " ")[$0 - 1] } }
            .flatMap { Int($0) } ?? 0
        #expect(events >= 20000, "on \(release): \(events) events: \(text)")
        let ms = Lab.rc(dir + "/fuzz.ms").map(Int.init) ?? Int.max
        #expect(ms <= 90_000, "on \(release): \(ms) ms")
        let cases = (try FileManager.default.contentsOfDirectory(atPath: Lab.root + "/corpora/fuzz")).filter { $0.hasSuffix(".vfs") }
        #expect(!cases.isEmpty)
        for c in cases {
            let n = String(c.dropLast(4))
            // A case with `!kernel` holds on that kernel only (the guest skips it elsewhere).
            let text = try String(contentsOfFile: Lab.root + "/corpora/fuzz/" + c, encoding: .utf8)
            let kernel = text.split(separator: "\n").first { $0.hasPrefix("!kernel ") }.map { String($0.dropFirst(8)) }
            if let kernel, kernel != release { continue }
            if text.contains("\n# lab: engine only") { continue }
            #expect(Lab.rc(dir + "/fuzz-case.\(n).rc") == 0, "\(n) on \(release): the kernel does not give the kept outcomes (fuzz-case.\(n).log)")
        }
    }

    @Test("a pin at an unaligned IOVA whose page starts below a mapping pins the process's page below it (what the engine takes from a recording); across two mappings the tree picks",
          arguments: Lab.releases)
    func pinBelowMapping(release: String) throws {
        let dir = Lab.dir(release)
        #expect(Lab.rc(dir + "/pin-below.rc") == 0, "on \(release): scripts/lab/pin-below-mapping failed (pin-below.log)")
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/pin-below.json"))
        let r = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(r["pin_inside"] as? Int == 1 && r["unpin_inside"] as? Int == 1, "on \(release): \(r)")
        #expect(r["pin_below"] as? Int == 1, "on \(release): the page below the mapping was not pinned: \(r)")
        #expect(r["pinned_after"] as? Int == 1 && r["unpin_below"] as? Int == 1 && r["pinned_at_end"] as? Int == 0, "on \(release): \(r)")
        // The straddling page goes to the tree's root, the second mapping, below whose memory is PROT_NONE.
        #expect(r["pin_straddling"] as? Int == -14, "on \(release): a page across two mappings did not go to the tree's choice: \(r)")
    }

    @Test("the whole rule catalogue on the real kernel: every rule PASS, none CONF (both devices are there), FAIL or BROK",
          arguments: Lab.releases)
    func conform(release: String) throws {
        #expect(Lab.rc(Lab.dir(release) + "/conform.rc") == 0, "conform on \(release) (conform.log)")
        let text = try String(contentsOfFile: Lab.dir(release) + "/conform.jsonl", encoding: .utf8)
        let verdicts = try text.split(separator: "\n").map { line -> (String, String) in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return (o["rule"] as? String ?? "?", o["verdict"] as? String ?? "?")
        }
        let catalogue = try Catalogue(directory: Lab.root + "/corpora/rules")
        #expect(verdicts.count == catalogue.rules.count, "on \(release): \(verdicts.count) verdicts for \(catalogue.rules.count) rules")
        let notPassed = verdicts.filter { $0.1 != "PASS" }
        #expect(notPassed.isEmpty, "on \(release): \(notPassed.map { "\($0.1) \($0.0)" })")
    }
}

/// Bullseye's 5.10 (with the test device built for its mdev API) and
/// bisecting between real kernels.
@Suite("Lab lane: 5.10 and bisect --kernels")
struct LabOlderKernelTests {
    static let oldScenarios = ["bad-inputs", "basic-tracking", "iommu-spans", "lab-probes", "pinned-pages", "pinned-scope", "pinned-clubbing"]

    /// The 5.10 guest's release directory (the one holding output.txt).
    static var release: String? {
        ((try? FileManager.default.contentsOfDirectory(atPath: Lab.out510!)) ?? []).sorted()
            .first { Lab.exists(Lab.out510! + "/\($0)/output.txt") }
    }

    @Test("on the real 5.10 each scenario's stated outcomes hold, pinned ones through the test device, and the engine's 5.10 profile reproduces every recording",
          .enabled(if: Lab.out510 != nil, "no 5.10 lab output: scripts/lab-lane sets VFIOTRACE_LAB_OUT_510"))
    func fiveTen() throws {
        let rel = try #require(Self.release, "no 5.10 guest output in \(Lab.out510!)")
        for s in Self.oldScenarios {
            let path = Lab.out510! + "/\(rel)/\(s).vft"
            guard Lab.exists(path) else {
                Issue.record("\(s) on 5.10: no recording came back (\(Lab.out510!)/\(rel)/\(s).log)")
                continue
            }
            if s == "iommu-spans" {
                // The scenario states 6.x's answers; 5.10 unmaps in tree order (event #25, see bisectKernels).
                let log = try String(contentsOfFile: Lab.out510! + "/\(rel)/\(s).log", encoding: .utf8)
                #expect(Lab.rc(Lab.out510! + "/\(rel)/\(s).rc") == 1 && log.contains("#25 unmap_dma") && log.contains(" 1 divergent"), "\(log)")
            } else {
                #expect(Lab.rc(Lab.out510! + "/\(rel)/\(s).rc") == 0, "\(s) on 5.10: the real outcomes differ from the scenario's (\(s).log)")
            }
            let input = try EventInput.open(path)
            #expect(ProfileChoice.auto.resolve(for: input.header).profile.name == "5.10", "\(rel)")
            let e = try Lab.engineReplay(path)
            #expect(e.clean && e.compared > 0, "\(s) on \(rel): \(e.why)")
            if s.hasPrefix("pinned-") {
                // The pins reached the test device: the kernel's answers are recorded.
                let pins = try Lab.events(path).filter { if case .pin = $0.body { return $0.result?.isSuccess == true }; return false }
                #expect(!pins.isEmpty, "\(s) on \(rel): no pin answered by the kernel")
            }
        }
    }

    @Test("record and record --pins on 5.10: the kernel's pin and dma_rw events (5.x signatures) are the calls the device was asked for; nothing lost; both replay on real and engine",
          .enabled(if: Lab.out510 != nil, "no 5.10 lab output: scripts/lab-lane sets VFIOTRACE_LAB_OUT_510"))
    func fiveTenRecorder() throws {
        let rel = try #require(Self.release)
        let dir = Lab.out510! + "/\(rel)"
        for n in Self.oldScenarios where n.hasPrefix("pinned-") {
            let rec = dir + "/\(n).rec.vft", pins = dir + "/\(n).pins.vft"
            #expect(Lab.rc(dir + "/\(n).rec.record.rc") == 0 && Lab.exists(rec), "\(n): record failed (\(n).rec.log)")
            #expect(Lab.rc(dir + "/\(n).pins.record.rc") == 0 && Lab.exists(pins), "\(n): record --pins failed (\(n).pins.log)")
            guard Lab.exists(rec), Lab.exists(pins) else { continue }
            #expect(Lab.rc(dir + "/\(n).rec.rc") == 0, "\(n): the recording does not replay on 5.10 (\(n).rec.real)")
            #expect(Lab.rc(dir + "/\(n).pins.rc") == 0, "\(n): the --pins recording does not replay on 5.10 (\(n).pins.real)")
            for path in [rec, pins] {
                let e = try Lab.engineReplay(path)
                #expect(e.clean && e.compared > 0, "\(path): the engine's 5.10 profile disagrees: \(e.why)")
            }
            let scan = try TraceScan.run(TraceReader(path: pins))
            #expect(scan.losses.isEmpty, "\(n): the --pins recording lost kernel events: \(scan.lossSummary ?? "")")
            let asked = Lab.kernelCalls(try Lab.events(rec)), seen = Lab.kernelCalls(try Lab.events(pins))
            #expect(!seen.isEmpty && asked == seen, "\(n): kernel events \(seen) differ from the device's requests \(asked)")
        }
    }

    @Test("vfiotrace fuzz against the real 5.10: 20000 random events, no divergence from the engine's 5.10 profile on the host the kernel's IOMMU describes",
          .enabled(if: Lab.out510 != nil, "no 5.10 lab output: scripts/lab-lane sets VFIOTRACE_LAB_OUT_510"))
    func fiveTenFuzz() throws {
        let rel = try #require(Self.release)
        let dir = Lab.out510! + "/\(rel)"
        let text = (try? String(contentsOfFile: dir + "/fuzz.txt", encoding: .utf8)) ?? ""
        #expect(Lab.rc(dir + "/fuzz.rc") == 0, "the engine diverged from 5.10 (the shrunk cases are in \(dir)/fuzz):\n\(text)")
        #expect(text.contains("fuzz: reference vfio:\(rel), candidate engine:5.10"), "\(text)")
        #expect(text.contains("20000 events") && text.contains(" 0 divergent"), "\(text)")
        let ms = Lab.rc(dir + "/fuzz.ms").map(Int.init) ?? Int.max
        #expect(ms <= 90_000, "\(ms) ms")
        // The kept cases: those for 5.10, and those for every kernel without a 5.10 variant.
        var ran = 0
        for c in try FileManager.default.contentsOfDirectory(atPath: Lab.root + "/corpora/fuzz") where c.hasSuffix(".vfs") {
            let n = String(c.dropLast(4))
            let rcText = (try? String(contentsOfFile: dir + "/fuzz-case.\(n).rc", encoding: .utf8)) ?? "missing"
            if rcText.hasPrefix("skip") { continue }
            #expect(Lab.rc(dir + "/fuzz-case.\(n).rc") == 0, "\(n) on 5.10: the kernel does not give the kept outcomes (fuzz-case.\(n).log)")
            ran += 1
        }
        #expect(ran >= 3, "\(ran) cases ran on 5.10")
        #expect(Lab.rc(dir + "/fuzz-case.set-iommu-nesting-5.10.rc") == 0, "the 5.10 variant must run there")
    }

    @Test("the 5.10 recordings equal the ones kept in corpora/real/<release>/",
          .enabled(if: Lab.out510 != nil, "no 5.10 lab output: scripts/lab-lane sets VFIOTRACE_LAB_OUT_510"),
          .disabled(if: Lab.env("VFIOTRACE_LAB_UPDATING") != nil, "scripts/lab-lane --update replaces the kept recordings with this run's"))
    func fiveTenKept() throws {
        let rel = try #require(Self.release)
        for s in Self.oldScenarios {
            let kept = Lab.root + "/corpora/real/\(rel)/\(s).vft", rec = Lab.out510! + "/\(rel)/\(s).vft"
            guard Lab.exists(rec) else { continue }
            guard Lab.exists(kept) else {
                Issue.record("\(s) on \(rel): no kept recording \(kept) (run scripts/lab-lane --update)")
                continue
            }
            let (d, extra) = try Lab.diff(kept, rec)
            #expect(d.clean && d.compared > 0 && extra == 0, "\(s) on \(rel): differs from the kept recording: \(d.why), \(extra) events more")
            let keptPins = Lab.root + "/corpora/real/\(rel)/\(s).pins.vft", pins = Lab.out510! + "/\(rel)/\(s).pins.vft"
            guard s.hasPrefix("pinned-"), Lab.exists(pins) else { continue }
            guard Lab.exists(keptPins) else {
                Issue.record("\(s) --pins on \(rel): no kept recording \(keptPins) (run scripts/lab-lane --update)")
                continue
            }
            let (p, pExtra) = try Lab.diff(keptPins, pins)
            #expect(p.clean && pExtra == 0, "\(s) --pins on \(rel): differs from the kept recording: \(p.why), \(pExtra) events more")
        }
    }

    @Test("the whole catalogue on the real 5.10: every rule PASS, CONF only where it does not apply to 5.10 (never for want of a device)",
          .enabled(if: Lab.out510 != nil, "no 5.10 lab output: scripts/lab-lane sets VFIOTRACE_LAB_OUT_510"))
    func fiveTenCatalogue() throws {
        let rel = try #require(Self.release)
        let dir = Lab.out510! + "/\(rel)"
        #expect(Lab.rc(dir + "/conform.rc") == 0, "conform on 5.10 (conform.log)")
        let text = try String(contentsOfFile: dir + "/conform.jsonl", encoding: .utf8)
        let verdicts = try text.split(separator: "\n").map { line -> (rule: String, verdict: String, detail: String) in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return (o["rule"] as? String ?? "?", o["verdict"] as? String ?? "?", o["detail"] as? String ?? "")
        }
        let catalogue = try Catalogue(directory: Lab.root + "/corpora/rules")
        #expect(verdicts.count == catalogue.rules.count)
        for v in verdicts where v.verdict != "PASS" {
            #expect(v.verdict == "CONF" && v.detail.hasPrefix("not applicable to kernel behaviour 5.10"), "\(v.verdict) \(v.rule): \(v.detail)")
        }
        // The host-dependent rule ran with this IOMMU's page sizes.
        #expect(verdicts.contains { $0.rule == "info.migration-cap" && $0.verdict == "PASS" })
        #expect(verdicts.filter { $0.verdict == "PASS" }.count >= 65)
    }

    @Test("bisect --kernels 5.10,6.1 on iommu-spans names 6.1, at event #25 (5.10 unmaps in red-black-tree order)",
          .enabled(if: Lab.bisect != nil, "no bisect output: scripts/lab-lane sets VFIOTRACE_LAB_BISECT"))
    func bisectKernels() throws {
        let dir = Lab.bisect!
        #expect(Lab.rc(dir + "/rc") == 1, "bisect exits 1 when the outcomes change")
        func outcomes(_ kernel: String) throws -> [Event] {
            let sub = dir + "/" + kernel
            let rel = try #require((try? FileManager.default.contentsOfDirectory(atPath: sub))?.first { Lab.exists(sub + "/\($0)/bisect.vft") },
                                   "no recording for \(kernel) in \(sub)")
            return try Lab.events(sub + "/\(rel)/bisect.vft")
        }
        let change = Bisection.firstChange(try outcomes("5.10"), try outcomes("6.1"), options: ComparisonOptions())
        #expect(change?.expected.seq == 25, "first change at \(change.map { "#\($0.expected.seq)" } ?? "none")")
    }

    @Test("bisect --kernels 5.10,6.1 on pinned-scope (through the test device) finds no change: 5.10 stable populates on detach too",
          .enabled(if: Lab.bisect != nil, "no bisect output: scripts/lab-lane sets VFIOTRACE_LAB_BISECT"))
    func bisectPinnedKernels() throws {
        let out = try String(contentsOfFile: Lab.bisect! + "/pinned.txt", encoding: .utf8)
        #expect(Lab.rc(Lab.bisect! + "/pinned.rc") == 0, "\(out)")
        #expect(out.contains("no change across 5.10, 6.1"), "\(out)")
        // And the guests did pin: each kernel's recording holds answered pins.
        for k in ["5.10", "6.1"] {
            let sub = Lab.bisect! + "/pinned/" + k
            let rel = try #require((try? FileManager.default.contentsOfDirectory(atPath: sub))?.first { Lab.exists(sub + "/\($0)/bisect.vft") })
            let pins = try Lab.events(sub + "/\(rel)/bisect.vft").filter { if case .pin = $0.body { return $0.result?.isSuccess == true }; return false }
            #expect(!pins.isEmpty, "no answered pin on \(k)")
        }
    }

    @Test("bisect --kernels --html links the change 5.10 -> 6.1 to a card for event #25",
          .enabled(if: Lab.bisect != nil, "no bisect output: scripts/lab-lane sets VFIOTRACE_LAB_BISECT"))
    func bisectKernelsPage() throws {
        let page = try String(contentsOfFile: Lab.bisect! + "/bisect.html", encoding: .utf8)
        #expect(page.contains("<td>5.10</td><td>6.1</td><td class=\"change\">FIRST CHANGE</td><td><a href=\"#d1\">#25 "))
        #expect(page.contains("id=\"d1\""))
        #expect(page.contains("kernels 5.10,6.1"))
    }

    @Test("the lab's progress line showed the 5.10 guest's phases with its elapsed time",
          .enabled(if: Lab.out510 != nil, "no 5.10 lab output: scripts/lab-lane sets VFIOTRACE_LAB_OUT_510"))
    func progressLine() throws {
        let shown = try String(contentsOfFile: Lab.out510! + "/progress.txt", encoding: .utf8)
        let lines = shown.split(separator: "\r").map { $0.replacingOccurrences(of: "\u{1B}[K", with: "") }
        #expect(lines.contains { $0.hasPrefix("vm-lab: 5.10 preparing ") })
        #expect(lines.contains { $0.hasPrefix("vm-lab: 5.10 booting ") })
        #expect(lines.contains { $0.hasPrefix("vm-lab: 5.10 running ") })
        // Seconds count up.
        let secs = lines.filter { $0.hasPrefix("vm-lab: 5.10 ") }.compactMap { l -> Int? in
            guard let r = l.range(of: #"\d+s"#, options: .regularExpression) else { return nil }
            return Int(l[r].dropLast())
        }
        #expect(secs.count > 5 && secs == secs.sorted() && secs.last! > secs.first!)
        // The line is cleared at the end.
        #expect(shown.hasSuffix("\r\u{1B}[K") || shown.contains("\r\u{1B}[K\n") || shown.contains("\r\u{1B}[KPASS"))
    }
}

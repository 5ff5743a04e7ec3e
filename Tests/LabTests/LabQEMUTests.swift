import Conform
import Foundation
import Testing
import Trace
@testable import Replay

/// QEMU 10 in the lab guests live-migrates a VM with the test device's
/// migratable type (scripts/lab/qemu-migration, run by
/// scripts/lab-lane-guest), recorded with `vfiotrace record --pins`.
@Suite("Lab lane: QEMU live-migrates a VM with an assigned device", .enabled(if: Lab.out != nil, Comment(rawValue: Lab.skipReason)))
struct LabQEMUTests {
    static func dir(_ release: String) -> String { Lab.dir(release) + "/qemu" }

    /// migration.json: what the driver saw (QMP answers, the device's statistics).
    static func report(_ release: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir(release) + "/migration.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func value(_ r: [String: Any], _ path: String...) -> Any? {
        var cur: Any? = r
        for k in path { cur = (cur as? [String: Any])?[k] }
        return cur
    }

    @Test("the migration and the incoming one complete, the destination resumes the device's state; a cancelled and a killed migration leave it sound",
          arguments: Lab.releases)
    func migrated(release: String) throws {
        #expect(Lab.rc(Self.dir(release) + "/qemu.rc") == 0, "\(release): scripts/lab/qemu-migration failed (\(Self.dir(release))/output.txt)")
        let r = try Self.report(release)
        #expect(Self.value(r, "migration", "status") as? String == "completed", "\(release)")
        #expect(Self.value(r, "incoming", "status") as? String == "completed", "\(release)")
        #expect(Self.value(r, "destination_resumed") as? Bool == true, "\(release): \(Self.value(r, "destination_stats") ?? "-")")
        #expect(Self.value(r, "cancel", "status_before") as? String == "active" && Self.value(r, "cancel", "status") as? String == "cancelled",
                "\(release): \(Self.value(r, "cancel") ?? "-")")
        #expect(Self.value(r, "cancel", "stats", "state") as? String == "running", "\(release): the device did not run again after the cancel")
        #expect(Self.value(r, "kill", "status_before") as? String == "active", "\(release): QEMU was not killed mid-migration")
        #expect(Self.value(r, "kill", "stats_after", "open") as? Int == 0 && Self.value(r, "kill", "stats_after", "pinned") as? Int == 0,
                "\(release): after QEMU was killed: \(Self.value(r, "kill", "stats_after") ?? "-")")
        // No page record or migration data file left behind by any of it.
        #expect(Self.value(r, "live_objects") as? String == "0 0", "\(release): live_objects \(Self.value(r, "live_objects") ?? "-")")
    }

    @Test("the migratable device's state machine, driven directly: every arc, data fd and refusal as the uapi says (mig-arcs)",
          arguments: Lab.releases)
    func arcs(release: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Lab.dir(release) + "/mig-arcs.json"))
        let steps = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        #expect(steps.count >= 17, "\(release): \(steps.count) steps")
        for s in steps where s["ok"] as? Bool != true {
            Issue.record("\(release): \(s["step"] ?? "?"): want \(s["want"] ?? "?"), got \(s["got"] ?? "?")")
        }
        #expect(Lab.rc(Lab.dir(release) + "/mig-arcs.rc") == 0, "\(release): mig-arcs.log")
    }

    @Test("at least 3 dirty syncs, non-empty bitmaps in at least two, the device's long-term pins in every one; its state changes in the trace",
          arguments: Lab.releases)
    func syncs(release: String) throws {
        let s = ClientSession(try Lab.events(Self.dir(release) + "/qemu-src.vft"))
        let t = try #require(s.trackings.first, "\(release): no tracking period in QEMU's recording")
        #expect(t.stop != nil, "\(release): tracking never stopped")
        #expect(t.syncs.count >= 3, "\(release): \(t.syncs.count) syncs")
        let nonEmpty = t.syncs.filter { $0.queries.contains { ($0.dirtyPages ?? 0) > 0 } }.count
        #expect(nonEmpty >= 2, "\(release): \(nonEmpty) of \(t.syncs.count) syncs report dirty pages")
        let hold = try #require(Self.value(try Self.report(release), "workload", "hold") as? [[Int]])
        for (n, sync) in t.syncs.enumerated() {
            for range in hold {
                for p in 0..<UInt64(range[1]) {
                    let iova = UInt64(range[0]) + p * 4096
                    let q = sync.queries.first { $0.iova <= iova && iova < $0.iova + $0.size }
                    let page = q.map { (iova - $0.iova) / $0.pgsize }
                    let dirty = q.map { q in q.dirtyRuns.contains { $0.contains(page!) } } ?? false
                    #expect(dirty, "\(release): sync \(n + 1) does not report the held page \(TextSyntax.hex(iova))")
                }
            }
        }
        let states = s.states.map(\.state)
        #expect(states.contains(.stop) && (states.contains(.stopCopy)), "\(release): device states \(states.map(\.name))")
    }

    @Test("record --pid attached to QEMU: the migration completes, the recording has its syncs and passes the client rules",
          arguments: Lab.releases)
    func attached(release: String) throws {
        let r = try Self.report(release)
        #expect(Self.value(r, "attach", "status") as? String == "completed", "\(release): \(Self.value(r, "attach") ?? "-")")
        #expect(Self.value(r, "attach", "recorder_exit") as? Int == 0, "\(release): the attached recorder failed (qemu-attach.stderr)")
        let events = try Lab.events(Self.dir(release) + "/qemu-attach.vft")
        let s = ClientSession(events)
        #expect((s.trackings.first?.syncs.count ?? 0) >= 3, "\(release): \(s.trackings.first?.syncs.count ?? 0) syncs")
        for c in ClientRules.run(events, backend: release) {
            let want: Verdict = c.rule.id == "client.unmap-with-bitmap" ? .conf : .pass
            #expect(c.verdict == want, "\(release): \(c.rule.id): \(c.verdict.rawValue) \(c.detail)")
        }
    }

    @Test("QEMU's recordings replay with no divergence on the engine and on the real kernel", arguments: Lab.releases)
    func replays(release: String) throws {
        for r in ["qemu-src", "qemu-dst", "qemu-attach"] {
            let path = Self.dir(release) + "/\(r).vft"
            guard Lab.exists(path) else { Issue.record("\(release): no \(r).vft came back"); continue }
            let e = try Lab.engineReplay(path)
            #expect(e.clean && e.compared > 0, "\(release) \(r): the engine disagrees: \(e.why)")
            #expect(Lab.rc(Self.dir(release) + "/\(r).real.rc") == 0, "\(release) \(r): does not replay on the real kernel (\(r).real)")
            let scan = try TraceScan.run(TraceReader(path: path))
            #expect(scan.losses.isEmpty && scan.isIntact, "\(release) \(r): \(scan.lossSummary ?? "not intact")")
        }
    }

    /// `vfio_get_dirty_bitmap iova=0x0 size= 0xc3000 bitmap_size=0x20 start=0x0 dirty_pages=2`
    static func qemuQueries(_ log: String) -> [[UInt64]] {
        log.split(separator: "\n").compactMap { line -> [UInt64]? in
            guard let at = line.range(of: "vfio_get_dirty_bitmap ") else { return nil }
            let words = line[at.upperBound...].replacingOccurrences(of: "= ", with: "=").split(separator: " ")
            var f: [String: UInt64] = [:]
            for w in words {
                let kv = w.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { continue }
                let v = String(kv[1])
                f[String(kv[0])] = v.hasPrefix("0x") ? UInt64(v.dropFirst(2), radix: 16) : UInt64(v)
            }
            guard let i = f["iova"], let s = f["size"], let b = f["bitmap_size"], let d = f["dirty_pages"] else { return nil }
            return [i, s, b, d]
        }
    }

    @Test("the recording agrees with QEMU's own trace log: every query's iova, size, bitmap size and dirty count", arguments: Lab.releases)
    func qemuLog(release: String) throws {
        let log = try String(contentsOfFile: Self.dir(release) + "/qemu-src.log", encoding: .utf8)
        let theirs = Self.qemuQueries(log)
        let ours = ClientSession(try Lab.events(Self.dir(release) + "/qemu-src.vft")).queries.map {
            [$0.iova, $0.size, $0.bitmapSize, $0.dirtyPages ?? UInt64.max]
        }
        #expect(!theirs.isEmpty, "\(release): QEMU logged no vfio_get_dirty_bitmap")
        #expect(ours == theirs, "\(release): recorded \(ours.count) queries, QEMU logged \(theirs.count); first difference at query \(Array(zip(ours, theirs)).firstIndex { $0.0 != $0.1 }.map { String($0 + 1) } ?? "past the shorter"): \(Array(zip(ours, theirs)).first { $0.0 != $0.1 }.map { "\($0.0) vs \($0.1)" } ?? "")")
    }

    @Test("QEMU's migration passes the client rules (the unmap rule: nothing to judge)", arguments: Lab.releases)
    func clientRules(release: String) throws {
        for r in ClientRules.run(try Lab.events(Self.dir(release) + "/qemu-src.vft"), backend: release) {
            let want: Verdict = r.rule.id == "client.unmap-with-bitmap" ? .conf : .pass
            #expect(r.verdict == want, "\(release): \(r.rule.id): \(r.verdict.rawValue) \(r.detail)")
        }
    }
}

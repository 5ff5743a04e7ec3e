import Foundation
import Testing
import Trace
@testable import Conform

/// The client rules on QEMU's own migrations, kept in corpora/real/ by the
/// lab lane (scripts/lab-lane --update): every rule PASSes or is CONF (the
/// trace holds nothing it is about), and each FAILs on a copy edited as
/// little as it takes to break the rule.
@Suite("Client rules on QEMU's recorded migrations")
struct ClientRuleTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// corpora/real/<release>/qemu-src.vft, one per kernel release.
    static let recordings: [String] = {
        let base = root + "/corpora/real"
        let kernels = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        return kernels.sorted().map { base + "/" + $0 + "/qemu-src.vft" }.filter { FileManager.default.fileExists(atPath: $0) }
    }()

    static func events(_ path: String) throws -> [Event] { try EventInput.open(path).readAll() }

    static func verdicts(_ events: [Event]) -> [String: RuleResult] {
        Dictionary(uniqueKeysWithValues: ClientRules.run(events, backend: "test").map { ($0.rule.id, $0) })
    }

    static func isQuery(_ e: Event) -> Bool {
        if case .dirtyPages(let x) = e.body { return x.range != nil }
        return false
    }

    static func edit(_ events: [Event], seq: UInt64, _ change: (inout DirtyPages) -> Void) -> [Event] {
        events.map { e in
            guard e.seq == seq, case .dirtyPages(var x) = e.body else { return e }
            change(&x)
            var e = e
            e.body = .dirtyPages(x)
            return e
        }
    }

    @Test("QEMU's recordings on both lab kernels are kept")
    func kept() {
        #expect(Self.recordings.count >= 2, "\(Self.recordings): run scripts/lab-lane --update")
    }

    @Test("every client rule PASSes on QEMU's migration, but the unmap rule (QEMU unmaps nothing writable while tracking: CONF)",
          arguments: recordings)
    func qemuPasses(path: String) throws {
        let v = Self.verdicts(try Self.events(path))
        #expect(v.count == ClientRules.all.count)
        for (id, r) in v {
            let want: Verdict = id == "client.unmap-with-bitmap" ? .conf : .pass
            #expect(r.verdict == want, "\(path): \(id): \(r.verdict.rawValue) \(r.detail)")
        }
    }

    @Test("each rule FAILs on a minimally edited copy", arguments: recordings)
    func editedCopiesFail(path: String) throws {
        let events = try Self.events(path)
        let session = ClientSession(events)
        let tracking = try #require(session.trackings.first)
        let syncs = tracking.syncs
        try #require(syncs.count >= 3)
        func fails(_ id: String, _ edited: [Event], _ what: String) {
            let r = Self.verdicts(edited)[id]
            #expect(r?.verdict == .fail, "\(path): \(what): \(id) says \(r?.verdict.rawValue ?? "nothing") \(r?.detail ?? "")")
        }
        // START removed: the queries are made with tracking off.
        fails("client.start-before-query", events.filter { $0.seq != tracking.start }, "START removed")
        // One section left out of the second sync.
        let skipped = syncs[1].queries[1].seq
        fails("client.query-every-mapping", events.filter { $0.seq != skipped }, "a section skipped")
        // A bitmap asked in 8 KiB pages.
        fails("client.bitmap-pgsize", Self.edit(events, seq: syncs[0].queries[0].seq) { $0.range!.bitmap.pgsize = 8192 }, "8K pages")
        // A query that starts one page into its mapping.
        fails("client.query-mapping-boundaries", Self.edit(events, seq: syncs[0].queries[0].seq) {
            $0.range!.iova += 4096; $0.range!.size -= 4096
        }, "off a boundary")
        // The bitmap of the biggest section cut to one word.
        let big = syncs[0].queries.max { $0.size < $1.size }!
        fails("client.bitmap-size", Self.edit(events, seq: big.seq) { $0.range!.bitmap.size = 8 }, "one word")
        // The final sync removed: the last one left ran with the device running.
        let final = Set(syncs.last!.queries.map(\.seq))
        fails("client.final-sync-after-devices-stop", events.filter { !final.contains($0.seq) }, "final sync removed")
        // An UNMAP without its bitmap while tracking (and with it: PASS).
        let at = try #require(events.firstIndex { $0.seq == syncs[1].queries[0].seq })
        let container = syncs[1].queries[0].container
        func unmap(_ flags: UInt32) -> [Event] {
            var e = events
            let m = syncs[1].queries[0]
            e.insert(Event(seq: 1 << 40, time: events[at].time, tid: events[at].tid,
                           .unmapDMA(UnmapDMA(fd: container, flags: flags, iova: m.iova, size: m.size, result: .ok(0)))), at: at)
            return e
        }
        fails("client.unmap-with-bitmap", unmap(0), "UNMAP without the bitmap")
        #expect(Self.verdicts(unmap(VFIOUAPI.unmapFlagGetDirtyBitmap))["client.unmap-with-bitmap"]?.verdict == .pass)
    }

    /// QEMU 10 on 6.12, recorded by `record --pins --pid`: the recorder's
    /// stops slowed QEMU so that the guest's BIOS remapped 0xc0000..0xfffff
    /// (PAM) after the migration had started, and QEMU unmapped the RAM at
    /// 0xd8000 while tracking, without the bitmap (vfio_legacy_dma_unmap asks
    /// for it only with a vIOMMU): what a device wrote there since the last
    /// sync would never be migrated.
    @Test("QEMU unmapping RAM while tracking without its bitmap, caught in a real recording")
    func qemuUnmapsWhileTracking() throws {
        let path = Self.root + "/corpora/real/6.12.117+deb12-amd64/qemu-remap-while-tracking.vft"
        let v = Self.verdicts(try Self.events(path))
        let unmap = try #require(v["client.unmap-with-bitmap"])
        #expect(unmap.verdict == .fail && unmap.detail.contains("writable mapping iova=0xd8000"), "\(unmap.detail)")
        for (id, r) in v where id != "client.unmap-with-bitmap" {
            #expect(r.verdict == .pass, "\(id): \(r.verdict.rawValue) \(r.detail)")
        }
        // The read-only ROM mapping it unmapped first is not held against it.
        #expect(!unmap.detail.contains("0xc3000 size"), "\(unmap.detail)")
    }

    @Test("a trace with no dirty tracking is CONF for every rule, not PASS")
    func nothingToJudge() {
        let events = [Event(seq: 0, time: 0, tid: 1, .open(Open(path: "/dev/vfio/vfio", result: .ok(3))))]
        for r in ClientRules.run(events, backend: "test") { #expect(r.verdict == .conf, "\(r.rule.id): \(r.verdict.rawValue)") }
    }
}

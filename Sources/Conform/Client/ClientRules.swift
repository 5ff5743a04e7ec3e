import Trace

/// Rules about how a VMM uses the dirty-tracking interface, checked on a
/// recorded trace (`vfiotrace conform --client TRACE`). The catalogue's
/// rules say what the kernel does; these say whether a program asked what
/// a correct live migration must ask, read from what it did. Verdicts as
/// for the catalogue: PASS, FAIL (with the first offending event), CONF
/// (the trace holds nothing the rule is about).
public enum ClientRules {
    public struct Check: Sendable {
        public let rule: Rule
        let judge: @Sendable (ClientSession) -> (Verdict, String)
    }

    static func rule(_ id: String, _ title: String, _ refs: String,
                     _ judge: @escaping @Sendable (ClientSession) -> (Verdict, String)) -> Check {
        Check(rule: Rule(id: id, title: title, refs: refs, scenarios: []), judge: judge)
    }

    /// Every client rule, in report order.
    public static let all: [Check] = [
        rule("client.start-before-query", "every dirty query is made while tracking is on (after START, before STOP)",
             "drivers/vfio/vfio_iommu_type1.c: vfio_iommu_type1_dirty_pages (GET_BITMAP is EINVAL unless dirty_page_tracking); "
                + "QEMU hw/vfio: vfio_legacy_set_dirty_page_tracking before vfio_legacy_query_dirty_bitmap") { s in
            guard !s.queries.isEmpty else { return (.conf, "the trace makes no dirty query") }
            if let q = s.queries.first(where: { !$0.tracking }) {
                return (.fail, "event #\(q.seq): GET_BITMAP iova=\(TextSyntax.hex(q.iova)) on container fd \(q.container) with tracking off")
            }
            return (.pass, "\(s.queries.count) queries, all while tracking")
        },
        rule("client.query-every-mapping", "each dirty sync queries every mapped range of the container",
             "QEMU hw/vfio: vfio_sync_dirty_bitmap / vfio_listener_log_sync (one query per RAM section per sync); "
                + "a range left out is memory whose DMA writes the migration never sees") { s in
            let syncs = s.trackings.flatMap { t in t.syncs.map { (t.container, $0) } }
            guard !syncs.isEmpty else { return (.conf, "the trace makes no dirty query while tracking") }
            for (n, (c, sync)) in syncs.enumerated() {
                guard let first = sync.queries.first else { continue }
                for m in first.mapped {
                    let covered = sync.queries.contains { $0.iova <= m.iova && m.iova &+ m.size <= $0.iova &+ $0.size }
                    if !covered {
                        return (.fail, "sync \(n + 1) (from event #\(first.seq)) on container fd \(c) leaves out the mapping iova=\(TextSyntax.hex(m.iova)) size=\(TextSyntax.size(m.size))")
                    }
                }
            }
            return (.pass, "\(syncs.count) syncs, each over every mapping")
        },
        rule("client.bitmap-pgsize", "every dirty bitmap is asked in the IOMMU's smallest page size",
             "drivers/vfio/vfio_iommu_type1.c: vfio_iommu_type1_dirty_pages and vfio_dma_do_unmap refuse any other "
                + "(EINVAL; the migration capability's pgsize_bitmap); QEMU: vfio_get_dirty_bitmap uses qemu_real_host_page_size") { s in
            let asked = s.queries.map { ($0.seq, $0.container, $0.pgsize) }
            guard !asked.isEmpty else { return (.conf, "the trace asks for no dirty bitmap") }
            for (seq, c, p) in asked {
                guard let want = s.smallestPageSize[c] else {
                    return (.conf, "container fd \(c): no successful GET_INFO says its page sizes")
                }
                if p != want { return (.fail, "event #\(seq): bitmap page size \(TextSyntax.size(p)), the IOMMU's smallest is \(TextSyntax.size(want))") }
            }
            return (.pass, "\(asked.count) bitmaps in the smallest page size")
        },
        rule("client.query-mapping-boundaries", "each dirty query's range starts and ends on mapping boundaries, inside mapped memory",
             "drivers/vfio/vfio_iommu_type1.c: vfio_iova_dirty_bitmap (EINVAL unless iova is a mapping's start and iova + size "
                + "a mapping's end)") { s in
            guard !s.queries.isEmpty else { return (.conf, "the trace makes no dirty query") }
            for q in s.queries {
                let starts = q.mapped.contains { $0.iova == q.iova }
                let ends = q.mapped.contains { $0.iova &+ $0.size == q.iova &+ q.size }
                if !starts || !ends {
                    return (.fail, "event #\(q.seq): GET_BITMAP iova=\(TextSyntax.hex(q.iova)) size=\(TextSyntax.size(q.size)) does not \(starts ? "end" : "start") at a mapping's \(starts ? "end" : "start")")
                }
            }
            return (.pass, "\(s.queries.count) queries on mapping boundaries")
        },
        rule("client.bitmap-size", "each dirty bitmap buffer holds one bit per page of its range, in whole u64 words",
             "drivers/vfio/vfio_iommu_type1.c: verify_bitmap_size (EINVAL when smaller than DIRTY_BITMAP_BYTES(npages) "
                + "or larger than DIRTY_BITMAP_SIZE_MAX)") { s in
            guard !s.queries.isEmpty else { return (.conf, "the trace makes no dirty query") }
            for q in s.queries where q.pgsize != 0 {
                let pages = q.size / q.pgsize
                let need = (pages + 63) / 64 * 8
                if q.bitmapSize < need || q.bitmapSize > VFIOUAPI.dirtyBitmapSizeMax {
                    return (.fail, "event #\(q.seq): bitmap of \(q.bitmapSize) bytes for \(pages) pages (needs \(need))")
                }
            }
            return (.pass, "\(s.queries.count) bitmaps of the right size")
        },
        rule("client.unmap-with-bitmap", "an UNMAP of writable memory while tracking asks for the range's dirty bitmap",
             "drivers/vfio/vfio_iommu_type1.c: vfio_dma_do_unmap (VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP); without it the "
                + "dirty pages of the range are dropped with the mapping. QEMU hw/vfio: vfio_legacy_dma_unmap asks only "
                + "with a vIOMMU's IOTLB, so a RAM section removed while tracking loses them") { s in
            let judged = s.unmapsWhileTracking.filter { $0.writable != nil }
            guard !judged.isEmpty else { return (.conf, "the trace unmaps no writable memory while tracking") }
            if let u = judged.first(where: { !$0.withBitmap }), let w = u.writable {
                return (.fail, "event #\(u.seq): UNMAP \(u.all ? "ALL" : "iova=\(TextSyntax.hex(u.iova)) size=\(TextSyntax.size(u.size))") while tracking, without the dirty bitmap: the writable mapping iova=\(TextSyntax.hex(w.iova)) size=\(TextSyntax.size(w.size)) goes with whatever a device dirtied there since the last query")
            }
            return (.pass, "\(judged.count) unmaps of writable memory while tracking, each with its bitmap")
        },
        rule("client.final-sync-after-devices-stop",
             "the last sync before STOP comes after every device left RUNNING (and PRE_COPY), and covers every mapping",
             "QEMU hw/vfio: vfio_save_complete_precopy / migration_completion (the final dirty sync after the devices stop "
                + "in STOP_COPY); include/uapi/linux/vfio.h (a device in RUNNING or PRE_COPY may still DMA)") { s in
            let ended = s.trackings.filter { $0.stop != nil && !s.devices(of: $0.container).isEmpty }
            guard !ended.isEmpty else {
                return (.conf, "no tracking period ends with STOP on a container whose devices change migration state")
            }
            for t in ended {
                guard let last = t.syncs.last, let first = last.queries.first else {
                    return (.fail, "tracking on container fd \(t.container) stops (event #\(t.stop!)) with no dirty query at all")
                }
                let devices = s.devices(of: t.container)
                for d in devices.sorted() {
                    // The state at the sync's first query: the last one set before it.
                    let st = s.states.last { $0.device == d && $0.seq < first.seq }?.state ?? .running
                    if st.isRunning {
                        return (.fail, "the last sync before STOP (event #\(t.stop!)) starts at event #\(first.seq) with device fd \(d) in \(st.name): its later writes are never reported")
                    }
                    if let back = s.states.first(where: { $0.device == d && $0.seq > first.seq && $0.seq < last.queries.last!.seq && $0.state.isRunning }) {
                        return (.fail, "device fd \(d) runs again (\(back.state.name), event #\(back.seq)) in the middle of the last sync")
                    }
                }
                for m in first.mapped where !last.queries.contains(where: { $0.iova <= m.iova && m.iova &+ m.size <= $0.iova &+ $0.size }) {
                    return (.fail, "the last sync before STOP (event #\(t.stop!)) leaves out the mapping iova=\(TextSyntax.hex(m.iova))")
                }
            }
            return (.pass, "\(ended.count) tracking period\(ended.count == 1 ? "" : "s") end after a final sync with every device stopped")
        },
    ]

    /// Judges a trace's events by every rule (or those whose id matches `only`).
    public static func run(_ events: [Event], backend: String, only: String? = nil) -> [RuleResult] {
        let session = ClientSession(events)
        return all.filter { only == nil || Catalogue.glob(only!, matches: $0.rule.id) }.map { c in
            let (v, why) = c.judge(session)
            return RuleResult(rule: c.rule, backend: backend, verdict: v, detail: why, scenario: nil)
        }
    }
}
